"""Masking: valid numbers become placeholders (and come back), look-alikes are left alone."""

from __future__ import annotations

import pytest

from conf.masking import Masker, redact
from tests.conf.test_personal_data import VALID_CARD, VALID_ID, with_id_check, with_luhn

BAD_ID = VALID_ID[:-1] + ("0" if VALID_ID[-1] != "0" else "1")  # wrong GB 11643 check digit
BAD_CARD = VALID_CARD[:-1] + str((int(VALID_CARD[-1]) + 1) % 10)  # Luhn fails
CARD_16 = with_luhn("622588012345678")


@pytest.mark.parametrize(("text", "expected"), [
    ("手机13812345678，谢谢", "手机[PHONE]，谢谢"),
    ("call +86 139 1234 5678 or 138-1234-5678", "call [PHONE] or [PHONE]"),
    ("12812345678 is no mobile, 138123456789 is twelve digits", None),
    (f"身份证{VALID_ID}。", "身份证[ID]。"),
    (f"身份证{BAD_ID}", None),
    (f"身份证{with_id_check('11010519491331002')}", None),  # month 13: no birth date
    (f"卡号 {VALID_CARD} / {CARD_16[:4]} {CARD_16[4:8]} {CARD_16[8:12]} {CARD_16[12:]}", "卡号 [CARD] / [CARD]"),
    (f"卡号 {BAD_CARD}", None),
    ("订单号 1234567890123456", None),
    ("mail alice.w@example.com.cn today", "mail [EMAIL] today"),
    ("alice@localhost, version 1.2.3, 2026-12-03, ¥13800", None),
    (f"{VALID_ID} 13812345678 a@b.cn", "[ID] [PHONE] [EMAIL]"),
])
def test_redaction_is_neither_loose_nor_eager(text, expected):
    assert redact(text) == (text if expected is None else expected)


def test_placeholders_are_numbered_per_value_and_restored():
    m = Masker()
    masked = m.mask(f"我是13812345678，备用13900001111，身份证{VALID_ID}，再说一遍13812345678")
    assert masked == "我是[PHONE_1]，备用[PHONE_2]，身份证[ID_1]，再说一遍[PHONE_1]"
    assert m.mask("history: 13900001111") == "history: [PHONE_2]"  # one masker per turn, history included
    reply = "已记下 [PHONE_1] 和 [ID_1]；[PHONE_7] 是我编的"
    assert m.restore(reply) == f"已记下 13812345678 和 {VALID_ID}；[PHONE_7] 是我编的"


@pytest.mark.parametrize("cut", range(1, 12))
def test_a_placeholder_cut_across_stream_chunks_is_restored(cut):
    m = Masker()
    m.mask("a@b.cn 13812345678")
    text = "回复 [PHONE_1] 与 [EMAIL_1] [结束]"
    chunks = [text[:cut + 2], text[cut + 2:cut + 7], text[cut + 7:]]
    assert "".join(m.restore_stream(chunks)) == "回复 13812345678 与 a@b.cn [结束]"


def test_nothing_to_mask_is_text_unchanged():
    m = Masker()
    assert m.mask("你好 hello [PHONE_1]") == "你好 hello [PHONE_1]" and m.restore("[PHONE_1]") == "[PHONE_1]"
