"""A push → Incoming: one table {msgtype: converter} for robot messages, card callbacks and button taps."""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from conf.settings import Settings
from contract.envelope import Envelope
from workers.dingtalk import callbacks
from workers.errors import NothingToAnswer, PoisonMessage
from workers.state import buttons, cards

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaItem:
    """A file the user sent, still at DingTalk: fetched by `downloadCode` before the skill runs."""

    kind: str  # image | audio | video | file
    download_code: str
    name: str = ""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inbound:
    """What one robot message says, independent of its DingTalk shape."""

    text: str = ""
    media: tuple[MediaItem, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    supported: bool = True


Converter = Callable[[dict[str, Any]], Inbound]


def _content(payload: dict[str, Any]) -> dict[str, Any]:
    content = payload.get("content")
    if isinstance(content, str):  # some gateways send content as a JSON string
        try:
            content = json.loads(content)
        except ValueError:
            return {}
    return content if isinstance(content, dict) else {}


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _media(kind: str, content: dict[str, Any], name: str = "", **meta_keys: str) -> tuple[MediaItem, ...]:
    code = _str(content.get("downloadCode") or content.get("pictureDownloadCode"))
    if not code:
        return ()
    meta = {out: _str(content.get(src)) for out, src in meta_keys.items() if content.get(src) is not None}
    return (MediaItem(kind, code, name, meta),)


def _quoted(text_obj: dict[str, Any]) -> dict[str, Any] | None:
    """The message a quoted reply refers to (`text.isReplyMsg` + `text.repliedMsg`)."""
    replied = text_obj.get("repliedMsg")
    if not text_obj.get("isReplyMsg") or not isinstance(replied, dict):
        return None
    content = replied.get("content")
    if isinstance(content, dict):
        if isinstance(content.get("richText"), list):
            quoted_text = "".join(_str(i.get("text")) for i in content["richText"] if isinstance(i, dict))
        else:
            quoted_text = _str(content.get("text") or content.get("content"))
    else:
        quoted_text = _str(content or replied.get("text"))
    return {
        "msg_id": _str(replied.get("msgId")),
        "msgtype": _str(replied.get("msgType") or replied.get("msgtype")),
        "sender_id": _str(replied.get("senderId")),
        "text": quoted_text.strip(),
    }


def convert_text(payload: dict[str, Any]) -> Inbound:
    raw = payload.get("text")
    text_obj: dict[str, Any] = raw if isinstance(raw, dict) else {}
    quoted = _quoted(text_obj)
    return Inbound(text=_str(text_obj.get("content")), params={"quoted": quoted} if quoted else {})


def convert_rich_text(payload: dict[str, Any]) -> Inbound:
    items = _content(payload).get("richText") or []
    if isinstance(items, dict):  # older payloads: {"richText": {"richTextList": [...]}}
        items = items.get("richTextList") or []
    texts: list[str] = []
    media: list[MediaItem] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "picture" or item.get("downloadCode") or item.get("pictureDownloadCode"):
            media.extend(_media("image", item))
        elif item.get("text") is not None:
            texts.append(_str(item.get("text")))
    return Inbound(text="".join(texts), media=tuple(media))


def convert_picture(payload: dict[str, Any]) -> Inbound:
    return Inbound(media=_media("image", _content(payload)))


def convert_audio(payload: dict[str, Any]) -> Inbound:
    """DingTalk's own speech recognition is the text; the clip is fetched only when it is missing."""
    content = _content(payload)
    recognition = _str(content.get("recognition")).strip()
    if recognition:
        return Inbound(text=recognition)
    return Inbound(media=_media("audio", content, duration="duration"))


def convert_video(payload: dict[str, Any]) -> Inbound:
    return Inbound(media=_media("video", _content(payload), duration="duration", video_type="videoType"))


def convert_file(payload: dict[str, Any]) -> Inbound:
    content = _content(payload)
    return Inbound(
        media=_media("file", content, _str(content.get("fileName")), file_id="fileId", space_id="spaceId")
    )


def convert_interactive_card(payload: dict[str, Any]) -> Inbound:
    """A shared card (e.g. a document): its link is what the user means."""
    url = _str(_content(payload).get("biz_custom_action_url"))
    if not url:
        return Inbound(supported=False)
    return Inbound(text=url, params={"shared_link": url})


# msgtype → converter. A type missing here is answered politely ("I can't read this yet").
CONVERTERS: dict[str, Converter] = {
    "text": convert_text,
    "richText": convert_rich_text,
    "picture": convert_picture,
    "audio": convert_audio,
    "video": convert_video,
    "file": convert_file,
    "interactiveCard": convert_interactive_card,
}


def mentions(payload: dict[str, Any]) -> list[str]:
    """Who else the message @-mentions (staff ids, or DingTalk ids when no staff id is known)."""
    bot = _str(payload.get("chatbotUserId"))
    found: list[str] = []
    for user in payload.get("atUsers") or []:
        if not isinstance(user, dict) or _str(user.get("dingtalkId")) == bot:
            continue
        who = _str(user.get("staffId") or user.get("dingtalkId"))
        if who and who not in found:
            found.append(who)
    return found


# Format (Cf) characters are invisible: zero-width spaces and joiners, bidi overrides and isolates
# ("Trojan Source" reordering), the BOM, tag characters (invisible "ASCII smuggling" of instructions
# to an LLM). Control (Cc) characters other than newline and tab are noise or terminal escapes.
_KEEP_CONTROLS = frozenset("\n\t")
_ZWJ = "\u200d"


def clean_text(text: str) -> str:
    """`text` without control, zero-width, bidi and tag characters (a ZWJ inside an emoji stays),
    line ends made "\n", in NFC."""
    if not text:
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in _KEEP_CONTROLS:
            continue
        if category == "Cf":
            # 👨‍👩‍👧: a joiner between two emoji is part of the picture
            if not (ch == _ZWJ and out and unicodedata.category(out[-1]) == "So"
                    and i + 1 < len(text) and unicodedata.category(text[i + 1]) == "So"):
                continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def strip_bot_mention(text: str, robot_name: str) -> str:
    """DingTalk removes the bot's @mention from group texts; richText and some clients keep it."""
    if robot_name:
        text = re.sub(rf"@{re.escape(robot_name)}(\s|$)", " ", text)
    return text.strip()


def convert(payload: dict[str, Any], robot_name: str = "") -> Inbound:
    """Look the msgtype up in the table; groups get their bot mention stripped and mentions listed."""
    msgtype = _str(payload.get("msgtype"))
    converter = CONVERTERS.get(msgtype)
    if converter is None:
        return Inbound(supported=False)
    inbound = converter(payload)
    text = strip_bot_mention(clean_text(inbound.text), robot_name)
    params = dict(inbound.params)
    if isinstance(params.get("quoted"), dict):
        params["quoted"] = {**params["quoted"], "text": clean_text(str(params["quoted"].get("text") or ""))}
    if _str(payload.get("conversationType")) == "2":
        others = mentions(payload)
        if others:
            params["mentions"] = others
        params["bot_mentioned"] = bool(payload.get("isInAtList", True))
    if params:
        params.setdefault("type", "message")
    return Inbound(text=text, media=inbound.media, params=params, supported=inbound.supported)


# --- a push → Incoming ------------------------------------------------------------------------


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
    converted = convert(envelope.payload, settings.dingtalk_robot_name)
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
    owner = cards.lookup(callback.out_track_id)
    if owner is None or owner.get("kind") == cards.AI_CARD:  # an AI card takes only Stop
        raise NothingToAnswer(f"callback for card {callback.out_track_id} that no skill owns (expired?)")
    refused = callbacks.refusal(callback, owner)
    if refused:
        log.warning("card callback for %s refused: %s", callback.out_track_id, refused)
        raise NothingToAnswer(f"card callback refused: {refused}")
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
        text=clean_text(callbacks.form_text(params)),
        params=params,
        skill=str(owner.get("skill") or ""),
    )


def stop_requested(envelope: Envelope) -> str:
    """The outTrackId whose streaming the user asked to stop, or ''. A Stop nobody may give (a card
    with no owner record, another user's or another corp's card) is refused: NothingToAnswer."""
    try:
        callback = callbacks.parse(envelope.payload)
    except callbacks.BadCallback:
        return ""
    if not callbacks.wants_stop(callback):
        return ""
    owner = cards.lookup(callback.out_track_id)
    refused = "no such card (expired?)" if owner is None else callbacks.refusal(callback, owner, stop=True)
    if refused:
        log.warning("stop for card %s refused: %s", callback.out_track_id, refused)
        raise NothingToAnswer(f"stop refused: {refused}")
    return callback.out_track_id
