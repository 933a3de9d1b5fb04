"""The data-flow audit's personal-data classes: real numbers are found, look-alikes are not."""

from __future__ import annotations

import pytest

from conf.personal_data import classes_in, luhn_valid, resident_id_valid


def with_luhn(prefix: str) -> str:
    """A card number: `prefix` plus the Luhn check digit."""
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


def with_id_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


VALID_ID = with_id_check("11010519491231002")
VALID_CARD = with_luhn("622202020000000000")  # 19 digits


@pytest.mark.parametrize(("text", "classes"), [
    ("我的手机是13812345678", ["mobile"]),
    ("call +86 13912345678 please", ["mobile"]),
    ("12812345678 is not a mobile (second digit 2)", []),
    ("138123456789 is twelve digits", []),
    (f"身份证 {VALID_ID}", ["resident_id"]),
    (f"身份证 {VALID_ID[:-1]}{'0' if VALID_ID[-1] != '0' else '1'}", []),  # wrong check digit
    (f"卡号 {VALID_CARD}", ["bank_card"]),
    (f"卡号 {VALID_CARD[:-1]}{(int(VALID_CARD[-1]) + 1) % 10}", []),  # Luhn fails
    ("订单号 1234567890123456", []),
    ("mail alice@example.com now", ["email"]),
    ("alice@localhost is not an address", []),
    (f"{VALID_ID} 13812345678 a@b.cn", ["email", "mobile", "resident_id"]),
    ("", []),
])
def test_classes_are_neither_loose_nor_eager(text, classes):
    assert classes_in(text) == classes


def test_a_resident_id_needs_a_real_birth_date():
    assert resident_id_valid(VALID_ID)
    assert not resident_id_valid(with_id_check("11010519491331002"))  # month 13
