"""Split a long reply into DingTalk-sized parts at line boundaries, keeping code fences whole."""

from __future__ import annotations

FENCE = "```"


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _hard_cut(line: str, max_bytes: int) -> list[str]:
    """A single line longer than a part: cut it by characters."""
    pieces: list[str] = []
    current = ""
    for char in line:
        if _utf8_len(current + char) > max_bytes:
            pieces.append(current)
            current = ""
        current += char
    if current:
        pieces.append(current)
    return pieces


def split_text(text: str, max_bytes: int, markdown: bool = False) -> list[str]:
    """Parts of at most max_bytes UTF-8 bytes each; in markdown a cut inside a ``` block closes
    the block and reopens it in the next part, so every part renders on its own."""
    if _utf8_len(text) <= max_bytes:
        return [text]
    reserve = _utf8_len("\n" + FENCE) * 2 if markdown else 0
    budget = max(16, max_bytes - reserve)
    parts: list[str] = []
    current: list[str] = []
    size = 0
    in_fence = False
    fence_at_part_start = False

    def flush() -> None:
        nonlocal current, size, fence_at_part_start
        body = "\n".join(current)
        if markdown and fence_at_part_start:
            body = FENCE + "\n" + body
        if markdown and in_fence:
            body = body + "\n" + FENCE
        parts.append(body)
        current, size = [], 0
        fence_at_part_start = in_fence

    for line in text.split("\n"):
        pieces = _hard_cut(line, budget) if _utf8_len(line) > budget else [line]
        for piece in pieces:
            cost = _utf8_len(piece) + (1 if current else 0)
            if current and size + cost > budget:
                flush()
                cost = _utf8_len(piece)
            current.append(piece)
            size += cost
            if markdown and piece.lstrip().startswith(FENCE):
                in_fence = not in_fence
    if current:
        flush()
    return [p for p in parts if p.strip()] or [text[:1]]
