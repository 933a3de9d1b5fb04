"""What an AI card shows: the text within DingTalk's byte limit, the overflow, notes in the user's language."""

from __future__ import annotations

CARD_MAX_BYTES = 1000  # DingTalk: ≤ 1 KB per streaming call, and isFull sends the whole text

NOTES = {
    "more": {"zh": "\n\n…（内容较长，余下部分见下一条消息）", "en": "\n\n…(continued in the next message)"},
    "stopped": {"zh": "\n\n（已停止）", "en": "\n\n(stopped)"},
    "failed": {"zh": "抱歉，回答时出了问题，请稍后再试。", "en": "Sorry, something went wrong while answering."},
    "timeout": {"zh": "抱歉，回答超时了，请稍后再试。", "en": "Sorry, the answer took too long. Please try again."},
}


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
