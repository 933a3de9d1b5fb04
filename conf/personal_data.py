"""Which personal data a text carries (mobile, resident ID, bank card, e-mail): audit classes, masking spans.

Detection only, with the real validity rules, so a random digit run is not counted: a mainland
mobile number (1[3-9] + 9 digits), an 18-digit resident ID whose GB 11643 check digit matches and
whose birth date is a date, a 16-19 digit bank card number that passes Luhn, an e-mail address.
"""

from __future__ import annotations

import datetime as dt
import re

MOBILE = "mobile"
RESIDENT_ID = "resident_id"
BANK_CARD = "bank_card"
EMAIL = "email"

# 13812345678, +86 138 1234 5678, 138-1234-5678 (separators only in the 3-4-4 places).
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[0-9]{8}|[- ][0-9]{4}[- ][0-9]{4})(?![0-9])")
_RESIDENT_ID = re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9])(?:[0-9][ -]?){15,18}[0-9](?![0-9])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id_valid(number: str) -> bool:
    """GB 11643-1999: the 18th character is the check of the first 17, and digits 7-14 a date."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != number[17].upper():
        return False
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return True


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of bank card numbers."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def spans(text: str, kind: str) -> list[tuple[int, int]]:
    """(start, end) of every valid occurrence of `kind` in `text` (overlaps between kinds not resolved)."""
    if kind == EMAIL:
        return [m.span() for m in _EMAIL.finditer(text)]
    if kind == MOBILE:
        return [m.span() for m in _MOBILE.finditer(text)]
    if kind == RESIDENT_ID:
        return [m.span() for m in _RESIDENT_ID.finditer(text) if resident_id_valid(m.group(0))]
    if kind == BANK_CARD:
        found = []
        for m in _CARD.finditer(text):
            digits = re.sub(r"[ -]", "", m.group(0))
            if 16 <= len(digits) <= 19 and luhn_valid(digits):
                found.append(m.span())
        return found
    raise ValueError(f"unknown personal-data class {kind!r}")


# Where two kinds claim the same characters, the first wins (an 18-digit ID may also pass Luhn).
PRIORITY = (EMAIL, RESIDENT_ID, BANK_CARD, MOBILE)


def occurrences(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the personal data in `text`, in order, without overlaps."""
    taken: list[tuple[int, int, str]] = []
    for kind in PRIORITY:
        for start, end in spans(text, kind):
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, kind))
    return sorted(taken)


def classes_in(text: str) -> list[str]:
    """The personal-data classes found in `text`, sorted (never the values themselves)."""
    return sorted({kind for _, _, kind in occurrences(text)}) if text else []
