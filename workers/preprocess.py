"""Preprocess stage: claim the msgId, normalise the text, load profile and session, pick a skill."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from conf.settings import get_settings
from ingest.envelope import Envelope
from ingest.protocol import TOPIC_BOT_MESSAGE
from skills.api import Reply, Turn
from webapp.actions.profiles import do_upsert_profile
from webapp.actions.records import epoch_to_datetime
from workers import dedup, routing, session, wording
from workers.errors import NothingToAnswer, PoisonMessage

log = logging.getLogger(__name__)

UNSUPPORTED_TYPE = (
    "暂时还看不懂这种消息，请发文字。I can't read this kind of message yet; please send text."
)


def _text_of_text(payload: dict[str, Any]) -> str:
    text = payload.get("text") or {}
    return str(text.get("content") or "") if isinstance(text, dict) else ""


def _text_of_rich_text(payload: dict[str, Any]) -> str:
    content = payload.get("content") or {}
    items = content.get("richText") or []
    if isinstance(items, dict):  # older payloads: {"richText": {"richTextList": [...]}}
        items = items.get("richTextList") or []
    return "".join(str(i.get("text") or "") for i in items if isinstance(i, dict))


def _text_of_audio(payload: dict[str, Any]) -> str:
    return str((payload.get("content") or {}).get("recognition") or "")


# msgtype → text. The message gateway (issue 6) replaces this table with full conversions.
TEXT_EXTRACTORS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": _text_of_text,
    "richText": _text_of_rich_text,
    "audio": _text_of_audio,
}


def normalise_text(text: str, limit: int) -> tuple[str, bool]:
    """Stripped text, cut to `limit` characters; the flag says whether it was cut."""
    text = text.strip()
    if len(text) > limit:
        return text[:limit], True
    return text, False


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


def _envelope(data: dict[str, Any]) -> Envelope:
    try:
        envelope = Envelope.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise PoisonMessage(f"not an envelope: {exc}") from exc
    if not envelope.msg_id:
        raise PoisonMessage("envelope without msg_id")
    return envelope


def preprocess(data: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Envelope dict → stage payload {msg_id, run_id, turn, delivery, reply, notes, record}."""
    settings = get_settings()
    envelope = _envelope(data)
    if envelope.topic != TOPIC_BOT_MESSAGE:
        raise NothingToAnswer(f"no handler for topic {envelope.topic!r} yet")
    user_id = envelope.sender_staff_id or envelope.sender_id
    if not user_id:
        raise PoisonMessage("robot message without senderStaffId or senderId")
    dedup.claim(
        envelope.msg_id,
        run_id,
        {
            "tenant_id": envelope.tenant_id,
            "conversation_id": envelope.conversation_id,
            "conversation_type": envelope.conversation_type,
            "msgtype": envelope.msgtype,
            "received_at": epoch_to_datetime(envelope.received_at),
        },
    )
    profile = do_upsert_profile(
        envelope.tenant_id, envelope.sender_staff_id, envelope.sender_id, envelope.sender_nick
    )
    extractor = TEXT_EXTRACTORS.get(envelope.msgtype)
    raw = extractor(envelope.payload) if extractor else ""
    text, cut = normalise_text(raw, settings.input_max_chars)
    turn = Turn(
        msg_id=envelope.msg_id,
        tenant_id=envelope.tenant_id,
        conversation_id=envelope.conversation_id,
        conversation_type=envelope.conversation_type,
        user_id=user_id,
        user_nick=envelope.sender_nick,
        text=text,
        msgtype=envelope.msgtype,
        history=session.load_history(envelope.tenant_id, envelope.conversation_id, user_id),
        profile=profile.snapshot(),
        locale=profile.locale,
        received_at=envelope.received_at,
    )
    notes = [wording.truncated_note(text, settings.input_max_chars, turn.locale)] if cut else []
    reply: dict[str, Any] | None = None
    if extractor is None:
        log.info("unsupported msgtype %r", envelope.msgtype)
        reply = Reply(text=UNSUPPORTED_TYPE).to_dict()
    elif not text:
        reply = Reply(text=wording.EMPTY_TEXT).to_dict()
    else:
        # A clarifying question (router unsure between skills) is answered instead of a skill.
        turn, reply = routing.decide_turn(turn)
    return {
        "msg_id": envelope.msg_id,
        "run_id": run_id,
        "turn": turn.to_dict(),
        "delivery": delivery_target(envelope, settings.dingtalk_robot_code),
        "reply": reply,
        "notes": notes,
        # Written to the MessageRecord in one go by postprocess.
        "record": {"user_id": profile.pk, "preprocessed_at": time.time()},
    }
