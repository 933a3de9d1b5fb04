"""Split a long reply into DingTalk-sized parts at line boundaries, keeping markdown whole.

In markdown a cut inside a ``` block closes the block and reopens it in the next part, and a cut
inside a table repeats the table's header row and separator in the next part, so every part
renders on its own.
"""

from __future__ import annotations

import re

FENCE = "```"
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


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


def _is_table_row(line: str) -> bool:
    return line.lstrip().startswith("|")


class _Splitter:
    """Accumulates lines into parts; knows whether the cut point is inside a fence or a table."""

    def __init__(self, budget: int, markdown: bool) -> None:
        self.budget = budget
        self.markdown = markdown
        self.parts: list[str] = []
        self.current: list[str] = []
        self.size = 0
        self.in_fence = False
        self.fence_at_part_start = False
        self.carried = 0  # lines at the start of `current` repeated from the previous part
        self.table_header: list[str] = []  # header + separator of the table being written
        self.previous = ""

    def _carry(self, next_line: str = "|") -> list[str]:
        """Lines the next part must start with so it renders alone: the table's header, when the
        next line is another row of that table."""
        if not (self.markdown and self.table_header and _is_table_row(next_line)):
            return []
        # A header too big to repeat would crowd out the rows; then the next part goes without it.
        if _utf8_len("\n".join(self.table_header)) > self.budget // 3:
            return []
        return list(self.table_header)

    def flush(self, next_line: str = "") -> None:
        body = "\n".join(self.current)
        if self.markdown and self.fence_at_part_start:
            body = FENCE + "\n" + body
        if self.markdown and self.in_fence:
            body = body + "\n" + FENCE
        self.parts.append(body)
        self.fence_at_part_start = self.in_fence
        self.current = self._carry(next_line)
        self.carried = len(self.current)
        self.size = _utf8_len("\n".join(self.current)) + (1 if self.current else 0)

    def add(self, piece: str) -> None:
        cost = _utf8_len(piece) + (1 if self.current else 0)
        if len(self.current) > self.carried and self.size + cost > self.budget:
            self.flush(piece)
            cost = _utf8_len(piece) + (1 if self.current else 0)
        self.current.append(piece)
        self.size += cost
        self._track(piece)

    def _track(self, piece: str) -> None:
        if not self.markdown:
            return
        if piece.lstrip().startswith(FENCE):
            self.in_fence = not self.in_fence
            self.table_header = []
        elif not self.in_fence and _TABLE_SEPARATOR.match(piece) and _is_table_row(self.previous):
            self.table_header = [self.previous, piece]
        elif self.in_fence or not _is_table_row(piece):
            self.table_header = []
        self.previous = piece


def split_text(text: str, max_bytes: int, markdown: bool = False) -> list[str]:
    """Parts of at most max_bytes UTF-8 bytes each (markdown kept renderable, see module doc)."""
    if _utf8_len(text) <= max_bytes:
        return [text]
    reserve = _utf8_len("\n" + FENCE) * 2 if markdown else 0
    budget = max(16, max_bytes - reserve)
    splitter = _Splitter(budget, markdown)
    for line in text.split("\n"):
        limit = budget // 2 if markdown and _is_table_row(line) else budget
        for piece in _hard_cut(line, limit) if _utf8_len(line) > limit else [line]:
            splitter.add(piece)
    if len(splitter.current) > splitter.carried or not splitter.parts:
        splitter.flush()
    return [p for p in splitter.parts if p.strip()] or [text[:1]]
