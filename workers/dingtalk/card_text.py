"""What a card shows: the text within DingTalk's byte limit, the overflow, notes, and hostile markup defused.

Text from outside (the user's words echoed, an LLM's or a remote skill's answer) is rendered by
DingTalk as markdown with some HTML. `card_value` escapes a value put into a card template (it is
shown as typed); `sanitize_markdown` keeps a skill's markdown but neutralises raw HTML tags and
links, images and buttons whose scheme is not http(s), dingtalk:// or dtmd:// (`safe_url`).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

CARD_MAX_BYTES = 1000  # DingTalk: ≤ 1 KB per streaming call, and isFull sends the whole text

NOTES = {
    "more": {"zh": "\n\n…（内容较长，余下部分见下一条消息）", "en": "\n\n…(continued in the next message)"},
    "stopped": {"zh": "\n\n（已停止）", "en": "\n\n(stopped)"},
    "failed": {"zh": "抱歉，回答时出了问题，请稍后再试。", "en": "Sorry, something went wrong while answering."},
    "timeout": {"zh": "抱歉，回答超时了，请稍后再试。", "en": "Sorry, the answer took too long. Please try again."},
}


# The links a reply may carry: the web, and DingTalk's own (dingtalk://dingtalkclient/..., dtmd://...).
SAFE_SCHEMES = frozenset({"http", "https", "dingtalk", "dtmd"})
# What turns a value into a link, an image, code or emphasis; ordinary punctuation stays as typed.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]!])")
_TAG = re.compile(r"<(?=[/!?a-zA-Z])")
# [text](url "title") and ![alt](url): the url up to a space or the closing parenthesis
_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'][^\n]*?[\"'])?\s*\)")
_BARE = re.compile(r"(?i)\b(?:javascript|vbscript):[^\s)]*|\bdata:text/html[^\s)]*")


def safe_url(url: str) -> bool:
    """Whether a link or button may point there: http(s) with a host, or a DingTalk scheme."""
    url = str(url or "").strip()
    if not url or any(ord(c) < 32 for c in url):
        return False
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(parts.hostname)
    return scheme in SAFE_SCHEMES


_URL_VALUE = re.compile(r"(?i)^[a-z][a-z0-9+.-]*:\S*$")


def card_value(value: object) -> str:
    """A value for a card template, shown literally: HTML and markdown characters escaped. A value
    that is one link (a template's button or image URL) stays as it is if safe, and is emptied if not."""
    text = str(value)
    if _URL_VALUE.match(text.strip()):
        return text.strip() if safe_url(text.strip()) else ""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def sanitize_markdown(text: str) -> str:
    """Markdown as a skill wrote it, minus raw HTML (`<script>` shows as text) and unsafe links (kept as text)."""
    if not text:
        return text

    def link(m: re.Match[str]) -> str:
        return m.group(0) if safe_url(m.group(3)) else m.group(2)

    text = _LINK.sub(link, text)
    text = _BARE.sub("", text)
    return _TAG.sub("&lt;", text)


def note(key: str, locale: str) -> str:
    return NOTES[key]["zh" if locale.lower().startswith("zh") else "en"]


def _cut(text: str, room: int) -> int:
    """Index to cut `text` so text[:i] is ≤ room bytes, preferring a line end, then a space."""
    size, end = 0, 0
    for end, ch in enumerate(text):  # noqa: B007 - `end` is where the loop stopped, read below
        size += len(ch.encode())
        if size > room:
            break
    else:
        return len(text)
    for sep, window in (("\n", 0.3), (" ", 0.15)):
        at = text.rfind(sep, int(end * (1 - window)), end)
        if at > 0:
            return at + 1
    return end


def fit_card(text: str, limit: int, tail: str = "", more: str = "") -> tuple[str, str]:
    """(what the card shows, the overflow to send as a markdown reply).

    The card shows `text + tail` when it fits in `limit` UTF-8 bytes; otherwise a head of the text,
    `more` (saying the rest follows) and the tail. A code fence open at the cut is closed on the
    card and reopened at the start of the overflow, so both halves stay valid markdown.
    """
    text = sanitize_markdown(text)
    whole = (text + tail).strip()
    if len(whole.encode()) <= limit:
        return whole, ""
    room = limit - len((more + tail).encode()) - len(b"\n```")
    i = _cut(text, max(0, room))
    head, rest = text[:i].rstrip(), text[i:].lstrip("\n")
    fence = ""
    if head.count("```") % 2:
        fence = head[head.rfind("```"):].split("\n", 1)[0]  # e.g. ```python
        head += "\n```"
        rest = fence + "\n" + rest
    return (head + more + tail).strip(), rest
