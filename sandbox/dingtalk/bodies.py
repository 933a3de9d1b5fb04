"""Shapes of reply bodies (sessionWebhook messages, OpenAPI msgKey/msgParam): validation and plain text."""

from __future__ import annotations

import json
from typing import Any

# sessionWebhook msgtype → required string fields of its object (§6.1).
WEBHOOK_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("content",),
    "markdown": ("title", "text"),
    "actionCard": ("title", "text"),
    "link": ("title", "text", "messageUrl"),
    "feedCard": (),
}

# OpenAPI msgKey → required msgParam fields (§6.3).
MSG_KEYS: dict[str, tuple[str, ...]] = {
    "sampleText": ("content",),
    "sampleMarkdown": ("title", "text"),
    "sampleImageMsg": ("photoURL",),
    "sampleLink": ("text", "title", "messageUrl"),
    "sampleActionCard": ("title", "text", "singleTitle", "singleURL"),
    "sampleActionCard2": ("title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2"),
    "sampleActionCard3": ("title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2",
                          "actionTitle3", "actionURL3"),
    "sampleActionCard4": ("title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2",
                          "actionTitle3", "actionURL3", "actionTitle4", "actionURL4"),
    "sampleActionCard5": ("title", "text", "actionTitle1", "actionURL1", "actionTitle2", "actionURL2",
                          "actionTitle3", "actionURL3", "actionTitle4", "actionURL4", "actionTitle5", "actionURL5"),
    "sampleActionCard6": ("title", "text", "buttonTitle1", "buttonUrl1", "buttonTitle2", "buttonUrl2"),
    "sampleAudio": ("mediaId", "duration"),
    "sampleFile": ("mediaId", "fileName", "fileType"),
    "sampleVideo": ("duration", "videoMediaId", "videoType", "picMediaId"),
}

# Text the sandbox can show for a reply, best effort, per msgtype / msgKey.
_TEXT_FIELDS = {
    "text": ("content",),
    "markdown": ("text",),
    "actionCard": ("title", "text"),
    "link": ("title", "text", "messageUrl"),
    "sampleText": ("content",),
    "sampleMarkdown": ("text",),
    "sampleLink": ("title", "text", "messageUrl"),
    "sampleImageMsg": ("photoURL",),
    "sampleFile": ("fileName",),
}

# OpenAPI msgKey → the msgtype name recorded on the reply.
MSGTYPE_OF_KEY = {
    "sampleText": "text",
    "sampleMarkdown": "markdown",
    "sampleImageMsg": "image",
    "sampleLink": "link",
    "sampleAudio": "audio",
    "sampleFile": "file",
    "sampleVideo": "video",
}


def _missing(obj: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not isinstance(obj.get(n), (str, int, float)) or obj.get(n) == ""]


def validate_webhook_body(body: Any) -> str | None:
    """Why a sessionWebhook body is invalid, or None when DingTalk would accept it."""
    if not isinstance(body, dict):
        return "缺少参数 json: body must be a JSON object"
    msgtype = body.get("msgtype")
    if msgtype not in WEBHOOK_FIELDS:
        return f"不支持的消息类型 msgtype={msgtype!r}"
    obj = body.get(msgtype)
    if not isinstance(obj, dict):
        return f"缺少参数 {msgtype}"
    missing = _missing(obj, WEBHOOK_FIELDS[msgtype])
    if missing:
        return f"缺少参数 {msgtype}.{missing[0]}"
    if msgtype == "actionCard":
        single = not _missing(obj, ("singleTitle", "singleURL"))
        btns = obj.get("btns")
        many = isinstance(btns, list) and btns and all(
            isinstance(b, dict) and not _missing(b, ("title", "actionURL")) for b in btns
        )
        if not (single or many):
            return "缺少参数 actionCard.singleTitle/singleURL or actionCard.btns[{title, actionURL}]"
    if msgtype == "feedCard":
        links = obj.get("links")
        if not isinstance(links, list) or not links or not all(
            isinstance(x, dict) and not _missing(x, ("title", "messageURL", "picURL")) for x in links
        ):
            return "缺少参数 feedCard.links[{title, messageURL, picURL}]"
    at = body.get("at")
    if at is not None and not isinstance(at, dict):
        return "at must be an object {atUserIds, atMobiles, isAtAll}"
    return None


def validate_msg_param(msg_key: Any, msg_param: Any) -> tuple[str, str] | None:
    """(code, message) when an OpenAPI msgKey/msgParam pair is invalid, else None."""
    if msg_key not in MSG_KEYS:
        return "InvalidParameter.MsgKey", f"msgKey {msg_key!r} 不存在; known: {sorted(MSG_KEYS)}"
    if not isinstance(msg_param, str):
        return "InvalidParameter.MsgParam", "msgParam must be a string containing JSON"
    if len(msg_param.encode("utf-8")) > 15000:
        return "InvalidParameter.MsgParamTooLarge", "msgParam exceeds 15000 bytes"
    try:
        param = json.loads(msg_param)
    except ValueError:
        return "InvalidParameter.MsgParam", "msgParam is not valid JSON"
    if not isinstance(param, dict):
        return "InvalidParameter.MsgParam", "msgParam must encode a JSON object"
    missing = _missing(param, MSG_KEYS[msg_key])
    if missing:
        return "InvalidParameter.MsgParam", f"msgParam of {msg_key} lacks {missing[0]!r}"
    return None


def plain_text(kind: str, obj: Any) -> str:
    """Best-effort readable text of a reply: `kind` is a webhook msgtype or an OpenAPI msgKey."""
    if not isinstance(obj, dict):
        return ""
    if kind.startswith("sampleActionCard") or kind == "actionCard":
        names: tuple[str, ...] = ("title", "text")
    elif kind == "feedCard":
        return "\n".join(str(x.get("title", "")) for x in obj.get("links", []) if isinstance(x, dict))
    else:
        names = _TEXT_FIELDS.get(kind, ())
    return "\n".join(str(obj[n]) for n in names if obj.get(n) not in (None, ""))


def msgtype_of_key(msg_key: str) -> str:
    if msg_key.startswith("sampleActionCard"):
        return "actionCard"
    return MSGTYPE_OF_KEY.get(msg_key, msg_key)
