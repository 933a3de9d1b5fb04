"""An Envelope → Incoming: who, where, what (text, media, params) and, for cards and taps, which skill."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from conf.settings import Settings
from ingest.envelope import Envelope
from workers.errors import NothingToAnswer, PoisonMessage
from workers.gateway import buttons, callbacks, cardowners, inbound
from workers.gateway.inbound import MediaItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Incoming:
    """One push, reduced to what the pipeline needs; `skill` is set when no routing is needed."""

    tenant_id: str
    conversation_id: str
    conversation_type: str
    staff_id: str
    sender_id: str
    nick: str
    msgtype: str
    delivery: dict[str, Any]
    seq_ms: float
    text: str = ""
    media: tuple[MediaItem, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    supported: bool = True
    skill: str = ""

    @property
    def user_id(self) -> str:
        return self.staff_id or self.sender_id


def delivery_target(envelope: Envelope, robot_code: str) -> dict[str, Any]:
    """Where and how the reply goes; travels alongside the turn through the chain."""
    payload = envelope.payload
    try:
        expires_at = int(payload.get("sessionWebhookExpiredTime") or 0)
    except (TypeError, ValueError):
        expires_at = 0
    return {
        "session_webhook": str(payload.get("sessionWebhook") or ""),
        "session_webhook_expires_at": expires_at,  # epoch ms, 0 = unknown
        "conversation_id": envelope.conversation_id,
        "conversation_type": envelope.conversation_type,
        "sender_staff_id": envelope.sender_staff_id,
        "sender_id": envelope.sender_id,
        "robot_code": str(payload.get("robotCode") or robot_code),
    }


def _seq(envelope: Envelope) -> float:
    """The message's place in its conversation: DingTalk's createAt (ms), else our receive time."""
    try:
        created = float(envelope.payload.get("createAt") or 0)
    except (TypeError, ValueError):
        created = 0.0
    return created or envelope.received_at * 1000


def from_message(envelope: Envelope, settings: Settings) -> Incoming:
    """A robot message through the inbound conversion table."""
    converted = inbound.convert(envelope.payload, settings.dingtalk_robot_name)
    return Incoming(
        tenant_id=envelope.tenant_id,
        conversation_id=envelope.conversation_id,
        conversation_type=envelope.conversation_type,
        staff_id=envelope.sender_staff_id,
        sender_id=envelope.sender_id,
        nick=envelope.sender_nick,
        msgtype=envelope.msgtype,
        delivery=delivery_target(envelope, settings.dingtalk_robot_code),
        seq_ms=_seq(envelope),
        text=converted.text,
        media=converted.media,
        params=converted.params,
        supported=converted.supported,
    )


def with_tap(incoming: Incoming, msg_id: str) -> Incoming:
    """A text that taps a remembered card button becomes that button, for the card's skill."""
    if incoming.msgtype != "text" or incoming.skill or incoming.params.get("quoted"):
        return incoming
    tapped = buttons.take(incoming.tenant_id, incoming.conversation_id, incoming.user_id, incoming.text, msg_id)
    if tapped is None:
        return incoming
    own = dict(tapped.get("params") or {})
    # The button's own params also sit at the top level, where the schedule skill reads them.
    params = {**own, "type": "button", "action": tapped.get("action", ""), "params": own, "via": "tap",
              "card_msg_id": tapped.get("msg_id", "")}
    log.info("text taps button %r of skill %s", tapped.get("action"), tapped.get("skill"))
    return replace(incoming, params=params, skill=str(tapped.get("skill") or ""))


def from_callback(envelope: Envelope, settings: Settings) -> Incoming:
    """A card callback for the skill that owns the card; Stop requests never get here (see stop_requested)."""
    try:
        callback = callbacks.parse(envelope.payload)
    except callbacks.BadCallback as exc:
        raise PoisonMessage(str(exc)) from exc
    owner = cardowners.lookup(callback.out_track_id)
    if owner is None:
        raise NothingToAnswer(f"callback for card {callback.out_track_id} that no skill owns (expired?)")
    own = callbacks.skill_params(callback, owner)
    params = {**(own.get("params") or {}), **own} if own["type"] == "button" else own
    clicker = callback.user_id or str(owner.get("user_id") or "")
    delivery = {**(owner.get("delivery") or {}), "sender_staff_id": clicker, "sender_id": ""}
    return Incoming(
        tenant_id=str(owner.get("tenant_id") or envelope.tenant_id),
        conversation_id=str(owner.get("conversation_id") or ""),
        conversation_type=str(owner.get("conversation_type") or ""),
        staff_id=clicker,
        sender_id="",
        nick=str(owner.get("user_nick") or "") if clicker == owner.get("user_id") else "",
        msgtype="card_callback",
        delivery=delivery,
        seq_ms=envelope.received_at * 1000,
        text=callbacks.form_text(params),
        params=params,
        skill=str(owner.get("skill") or ""),
    )


def stop_requested(envelope: Envelope) -> str:
    """The outTrackId whose streaming the user asked to stop, or ''."""
    try:
        callback = callbacks.parse(envelope.payload)
    except callbacks.BadCallback:
        return ""
    return callback.out_track_id if callbacks.wants_stop(callback) else ""
