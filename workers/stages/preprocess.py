"""Preprocess stage: claim the msgId, convert the message (gateway), fetch media, load context, pick a skill."""

from __future__ import annotations

import logging
from typing import Any

from contract.envelope import OVERSIZED_KEY, TOPIC_BOT_MESSAGE, TOPIC_CARD_CALLBACK, Envelope
from skills.api import Reply, Turn
from skills.remote.urlguard import Allowlist
from webapp.actions.profiles import do_upsert_profile
from webapp.actions.records import epoch_to_datetime
from workers import phrases
from workers.dingtalk import inbound as gateway
from workers.dingtalk.inbound import Incoming, delivery_target
from workers.dingtalk.media import MediaLimits, fetch
from workers.errors import DuplicateMessage, MediaRejected, NothingToAnswer, PoisonMessage
from workers.payload import StagePayload
from workers.phrases import phrase, size_text
from workers.resources import Resources, current
from workers.routing import routers
from workers.state import dedup, ordering, session

log = logging.getLogger(__name__)

__all__ = ["UNSUPPORTED_TYPE", "delivery_target", "normalise_text", "preprocess"]

UNSUPPORTED_TYPE = phrase("unsupported", "zh-CN")
# Structured params that name their skill themselves (card callbacks, tapped buttons): no routers.
STRUCTURED = ("button", "form_data")


def normalise_text(text: str, limit: int) -> tuple[str, bool]:
    """Stripped text, cut to `limit` characters; the flag says whether it was cut."""
    text = text.strip()
    if len(text) > limit:
        return text[:limit], True
    return text, False


def _envelope(data: dict[str, Any]) -> Envelope:
    try:
        envelope = Envelope.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise PoisonMessage(f"not an envelope: {exc}") from exc
    if not envelope.msg_id:
        raise PoisonMessage("envelope without msg_id")
    return envelope


def _incoming(envelope: Envelope, res: Resources) -> Incoming:
    settings = res.settings
    if envelope.topic == TOPIC_BOT_MESSAGE:
        return gateway.with_tap(gateway.from_message(envelope, settings), envelope.msg_id)
    if envelope.topic == TOPIC_CARD_CALLBACK:
        stop = gateway.stop_requested(envelope)
        if stop:
            # Fast path: the streamer polls this flag and finalizes the card as "stopped".
            res.cancel_flags.request(stop)
            raise NothingToAnswer(f"stop requested for card {stop}")
        return gateway.from_callback(envelope, settings)
    raise NothingToAnswer(f"no handler for topic {envelope.topic!r}")


def _attachments(incoming: Incoming, msg_id: str, res: Resources, locale: str
                 ) -> tuple[list[dict[str, Any]], str]:
    """References to the stored media, or ([], polite refusal) when one cannot be read."""
    if not incoming.media:
        return [], ""
    settings, api, store = res.settings, res.dingtalk, res.media_store
    limits = MediaLimits(settings.media_max_bytes, settings.media_allowed_types,
                         Allowlist.parse(settings.outbound_url_allowlist))
    robot_code = str(incoming.delivery.get("robot_code") or settings.dingtalk_robot_code)
    refs = []
    for index, item in enumerate(incoming.media):
        try:
            refs.append(fetch(api, store, limits, item, robot_code=robot_code, tenant_id=incoming.tenant_id,
                              user_id=incoming.user_id, msg_id=msg_id, index=index))
        except MediaRejected as exc:
            log.info("media refused (%s): %s", exc.reason, exc)
            values = {"limit": size_text(limits.max_bytes), **exc.values}
            return [], phrase(exc.reason, locale, **values)
    return refs, ""


def preprocess(data: dict[str, Any], run_id: str) -> StagePayload:
    """Envelope dict → the stage payload: turn, delivery target, preset reply, notes, order, record."""
    res = current()
    settings = res.settings
    envelope = _envelope(data)
    incoming = _incoming(envelope, res)
    user_id = incoming.user_id
    if not user_id:
        raise PoisonMessage("message without senderStaffId or senderId")
    # In line first (see workers.state.ordering), then the claim; a duplicate leaves the line as it was.
    order, added = ordering.register(envelope.msg_id, incoming.tenant_id, incoming.conversation_id,
                                     incoming.seq_ms)
    try:
        dedup.claim(
            envelope.msg_id,
            run_id,
            {
                "tenant_id": incoming.tenant_id,
                "conversation_id": incoming.conversation_id,
                "conversation_type": incoming.conversation_type,
                "msgtype": incoming.msgtype,
                "received_at": epoch_to_datetime(envelope.received_at),
            },
        )
    except DuplicateMessage:
        if added:  # the original is finished; this copy must not hold the line
            ordering.finish(envelope.msg_id, order)
        raise
    profile = do_upsert_profile(incoming.tenant_id, incoming.staff_id, incoming.sender_id, incoming.nick)
    text, cut = normalise_text(incoming.text, settings.input_max_chars)
    reply: Reply | None = None
    attachments: list[dict[str, Any]] = []
    oversized = envelope.payload.get(OVERSIZED_KEY)
    if oversized:  # the listener kept only who sent it: say so instead of answering nothing
        log.info("oversized push of %s bytes answered", oversized)
        reply = Reply(text=phrase("oversized", profile.locale, size=size_text(int(oversized)),
                                  limit=size_text(settings.ingest_max_frame_bytes)))
    elif not incoming.supported:
        log.info("unsupported msgtype %r", envelope.msgtype)
        reply = Reply(text=phrase("unsupported", profile.locale))
    else:
        attachments, refusal = _attachments(incoming, envelope.msg_id, res, profile.locale)
        if refusal:
            reply = Reply(text=refusal)
    turn = Turn(
        msg_id=envelope.msg_id,
        tenant_id=incoming.tenant_id,
        conversation_id=incoming.conversation_id,
        conversation_type=incoming.conversation_type,
        user_id=user_id,
        user_nick=incoming.nick,
        text=text,
        msgtype=incoming.msgtype,
        params=incoming.params,
        attachments=attachments,
        history=session.load_history(
            incoming.tenant_id, incoming.conversation_id, user_id, incoming.conversation_type
        ),
        profile=profile.snapshot(),
        locale=profile.locale,
        received_at=envelope.received_at,
    )
    notes = [phrases.truncated_note(text, settings.input_max_chars, turn.locale)] if cut else []
    structured = incoming.params.get("type") in STRUCTURED
    if reply is None and not (text or attachments or structured):
        reply = Reply(text=phrases.EMPTY_TEXT)
    elif reply is None and incoming.skill:
        # The card or button names its skill: routing does not second-guess it.
        turn = turn.replace(skill=incoming.skill, intent=str(incoming.params.get("type")), confidence=1.0)
    elif reply is None:
        # A clarifying question (router unsure between skills) is answered instead of a skill.
        turn, reply = routers.decide_turn(turn)
    return StagePayload(
        msg_id=envelope.msg_id,
        run_id=run_id,
        turn=turn,
        delivery=incoming.delivery,
        reply=reply,
        notes=tuple(notes),
        order=order,
        # Written to the MessageRecord in one go by deliver.
        record={"user_id": profile.pk, "preprocessed_at": res.clock.time()},
    )
