"""Masking of personal data (mobile, resident ID, bank card, e-mail): placeholders for text sent out.

`find(text)` lists the valid occurrences (conf.personal_data's rules: GB 11643 check digit and a
real birth date, Luhn, a mainland mobile prefix; overlaps resolved by `personal_data.PRIORITY`).
`redact(text)` replaces them for good (logs, audit rows: `[PHONE]`). `Masker` replaces them with
numbered placeholders (`[PHONE_1]`; the same value, the same placeholder) in text sent to an
external LLM or remote skill; `restore` / `restore_stream` put the originals back into the reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from conf import personal_data as pd

LABELS = {pd.EMAIL: "EMAIL", pd.RESIDENT_ID: "ID", pd.BANK_CARD: "CARD", pd.MOBILE: "PHONE"}
PLACEHOLDER = re.compile(r"\[(?:EMAIL|ID|CARD|PHONE)_[0-9]{1,4}\]")
# The longest placeholder, "[PHONE_9999]": a stream holds back at most this much of an open "[".
_LONGEST = 12


@dataclass(frozen=True)
class Found:
    start: int
    end: int
    kind: str
    value: str


def find(text: str) -> list[Found]:
    """The personal data in `text`, in order, without overlaps."""
    return [Found(start, end, kind, text[start:end]) for start, end, kind in pd.occurrences(text)]


def _replace(text: str, found: Iterable[Found], label: dict[Found, str]) -> str:
    out, pos = [], 0
    for f in found:
        out += [text[pos:f.start], label[f]]
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


# Every class needs an "@" or a run of 3+ digits (a mobile's 138, a card's 6222): most text has neither.
_MAYBE = re.compile(r"@|[0-9]{3}")


def redact(text: str) -> str:
    """`text` with every occurrence replaced by its class (`[PHONE]`, `[ID]`, `[CARD]`, `[EMAIL]`)."""
    if not text or not _MAYBE.search(text):
        return text
    found = find(text)
    return _replace(text, found, {f: f"[{LABELS[f.kind]}]" for f in found}) if found else text


@dataclass
class Masker:
    """Placeholders for one turn's text (and its history): `mask` as often as needed, then `restore`."""

    originals: dict[str, str] = field(default_factory=dict)  # placeholder → value
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def mask(self, text: str) -> str:
        found = find(text) if text else []
        if not found:
            return text
        labels = {}
        for f in found:
            key = (f.kind, re.sub(r"[ -]", "", f.value))
            if key not in self._by_value:
                n = self._counts.get(f.kind, 0) + 1
                self._counts[f.kind] = n
                self._by_value[key] = f"[{LABELS[f.kind]}_{n}]"
                self.originals[self._by_value[key]] = f.value
            labels[f] = self._by_value[key]
        return _replace(text, found, labels)

    def restore(self, text: str) -> str:
        """The placeholders this masker made put back (others, e.g. invented by the LLM, stay)."""
        if not self.originals or not text:
            return text
        return PLACEHOLDER.sub(lambda m: self.originals.get(m.group(0), m.group(0)), text)

    def restore_stream(self, chunks: Iterable[str]) -> Iterator[str]:
        """`restore` over a stream whose chunks may cut a placeholder in two ("[PHO", "NE_1]")."""
        pending = ""
        for chunk in chunks:
            pending += chunk
            cut = _safe_cut(pending)
            if cut:
                yield self.restore(pending[:cut])
                pending = pending[cut:]
        if pending:
            yield self.restore(pending)


def _safe_cut(text: str) -> int:
    """How much of `text` can go out now: all but an unfinished "[..." at its end."""
    opening = text.rfind("[", max(0, len(text) - _LONGEST))
    if opening == -1 or "]" in text[opening:]:
        return len(text)
    return opening
