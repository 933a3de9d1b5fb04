"""Which classes of personal data a text carries (mobile, resident ID, bank card, e-mail), for the data-flow audit.

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

_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9]{9}(?![0-9])")
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


def classes_in(text: str) -> list[str]:
    """The personal-data classes found in `text`, sorted (never the values themselves)."""
    found: set[str] = set()
    if _EMAIL.search(text):
        found.add(EMAIL)
    ids = {m.group(0) for m in _RESIDENT_ID.finditer(text) if resident_id_valid(m.group(0))}
    if ids:
        found.add(RESIDENT_ID)
    if _MOBILE.search(text):
        found.add(MOBILE)
    for match in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", match.group(0))
        if 16 <= len(digits) <= 19 and digits not in ids and luhn_valid(digits):
            found.add(BANK_CARD)
            break
    return sorted(found)
