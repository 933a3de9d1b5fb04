"""Outbound: a Reply → the DingTalk body of each channel (sessionWebhook, robot OpenAPI msgKey/msgParam).

Kinds: text, markdown, action_card (buttons). A button is `{"title", "url"}` (opens the link) or
`{"title", "action", "params"}` (handled by the skill): the latter becomes a tap-to-send link
(`dtmd://dingtalkclient/sendMessage`) whose text comes back as a message and is mapped back to the
button by workers.state.buttons. In groups the asker is @-mentioned on the first part.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote

from skills.api import Reply
from workers.dingtalk.card_text import safe_url, sanitize_markdown

log = logging.getLogger(__name__)

# OpenAPI action cards carry at most five buttons (sampleActionCard2..5; one: sampleActionCard).
MAX_BUTTONS = 5
TAP_TO_SEND = "dtmd://dingtalkclient/sendMessage?content="


def title_of(reply: Reply) -> str:
    """The notification title DingTalk shows in the chat list."""
    lines = reply.text.strip().splitlines()
    return (reply.title or (lines[0] if lines else "") or "…")[:40]


def button_url(button: dict[str, Any]) -> str:
    """Where a button goes: its link, or a tap-to-send of its title."""
    url = _link(button)
    return url or TAP_TO_SEND + quote(str(button.get("title") or ""), safe="")


def _link(button: dict[str, Any]) -> str:
    return str(button.get("url") or button.get("actionURL") or "")


def _buttons(reply: Reply) -> list[dict[str, Any]]:
    # Typed as dicts, but a remote skill's JSON may hold anything: checked, not trusted. A link to
    # anything but http(s), dingtalk:// or dtmd:// (javascript:, file:, ...) is dropped with its button.
    buttons = [b for b in reply.buttons if isinstance(b, dict) and b.get("title")]  # type: ignore[redundant-expr]
    unsafe = [b for b in buttons if _link(b) and not safe_url(_link(b))]
    if unsafe:
        log.warning("dropped %d button(s) with a link that is not http(s) or DingTalk's", len(unsafe))
        buttons = [b for b in buttons if b not in unsafe]
    if len(buttons) > MAX_BUTTONS:
        log.warning("action card with %d buttons cut to %d", len(buttons), MAX_BUTTONS)
    return buttons[:MAX_BUTTONS]


def with_mention(text: str, staff_id: str) -> str:
    """Markdown shows an @ only when its text contains `@staffId` (appended: a heading stays first)."""
    if not staff_id or f"@{staff_id}" in text:
        return text
    return f"{text}\n\n@{staff_id}"


def _kind(reply: Reply) -> str:
    if reply.kind == "action_card" and _buttons(reply):
        return "action_card"
    if reply.kind in ("markdown", "action_card"):
        return "markdown"
    return "text"


def webhook_body(reply: Reply, at_staff_id: str = "") -> dict[str, Any]:
    """The sessionWebhook body (§6.1); `at_staff_id` (groups, first part) @-mentions the asker."""
    at = {"atUserIds": [at_staff_id] if at_staff_id else [], "atMobiles": [], "isAtAll": False}
    kind = _kind(reply)
    if kind == "text":
        return {"msgtype": "text", "text": {"content": reply.text}, "at": at}
    text = with_mention(sanitize_markdown(reply.text), at_staff_id)
    if kind == "markdown":
        return {"msgtype": "markdown", "markdown": {"title": title_of(reply), "text": text}, "at": at}
    buttons = _buttons(reply)
    card: dict[str, Any] = {"title": title_of(reply), "text": text}
    if len(buttons) == 1:
        card.update(singleTitle=str(buttons[0]["title"]), singleURL=button_url(buttons[0]))
    else:
        card.update(
            btnOrientation="1" if len(buttons) <= 2 else "0",
            btns=[{"title": str(b["title"]), "actionURL": button_url(b)} for b in buttons],
        )
    return {"msgtype": "actionCard", "actionCard": card, "at": at}


def openapi_message(reply: Reply) -> tuple[str, str]:
    """(msgKey, msgParam) for the robot OpenAPI (§6.3); msgParam is a JSON *string*."""
    kind = _kind(reply)
    if kind == "text":
        key, param = "sampleText", {"content": reply.text}
    elif kind == "markdown":
        key, param = "sampleMarkdown", {"title": title_of(reply), "text": sanitize_markdown(reply.text)}
    else:
        buttons = _buttons(reply)
        param = {"title": title_of(reply), "text": sanitize_markdown(reply.text)}
        if len(buttons) == 1:
            key = "sampleActionCard"
            param.update(singleTitle=str(buttons[0]["title"]), singleURL=button_url(buttons[0]))
        else:
            key = f"sampleActionCard{len(buttons)}"
            for i, button in enumerate(buttons, start=1):
                param[f"actionTitle{i}"] = str(button["title"])
                param[f"actionURL{i}"] = button_url(button)
    return key, json.dumps(param, ensure_ascii=False)


def action_buttons(reply: Reply) -> list[dict[str, Any]]:
    """The buttons a skill handles (not plain links): what the tap-to-send memory must hold."""
    if _kind(reply) != "action_card":
        return []
    return [b for b in _buttons(reply) if b.get("action") and not (b.get("url") or b.get("actionURL"))]
