"""Hostile characters in what users send: control, zero-width, bidi and tag characters are stripped."""

from __future__ import annotations

import json

import pytest

from testkit.envelopes import envelope, robot_message
from workers.dingtalk.inbound import clean_text, convert
from workers.phrases import EMPTY_TEXT
from workers.stages.preprocess import preprocess


@pytest.mark.parametrize(("raw", "clean"), [
    ("年假\u200b怎么\u200c申请\ufeff", "年假怎么申请"),  # zero-width space / non-joiner, BOM
    ("pay \u202eredivider\u202c now", "pay redivider now"),  # a bidi override ("Trojan Source")
    ("a\u2066b\u2069c\u200fd\u061ce", "abcde"),  # isolates, RLM, Arabic letter mark
    ("hi\x00\x07\x1b[31mred\x7f\x85", "hi[31mred"),  # NUL, bell, ESC, DEL, NEL
    ("line1\r\nline2\rline3\n\ttab", "line1\nline2\nline3\n\ttab"),
    ("ok\U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065", "ok"),  # invisible tag "ignore"
    ("family 👨\u200d👩\u200d👧 ok", "family 👨\u200d👩\u200d👧 ok"),  # an emoji's joiner stays
    ("e\u0301", "\u00e9"),  # NFC
    ("普通的中文，English 123。", "普通的中文，English 123。"),
])
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


def test_the_conversion_cleans_the_text_and_the_quoted_message():
    data = robot_message("看\u200b这个\u202e")
    data["text"].update(isReplyMsg=True, repliedMsg={"msgId": "m0", "msgType": "text", "content": {"text": "原\u200d文\x00"}})
    inbound = convert(data)
    assert inbound.text == "看这个" and inbound.params["quoted"]["text"] == "原文"


@pytest.mark.django_db
def test_a_message_of_invisible_characters_gets_the_polite_empty_reply(worker_settings):
    payload = json.loads(json.dumps(preprocess(envelope(text="\u200b\u200b\u202e\x00 \ufeff"), run_id="r1").to_dict()))
    assert payload["turn"]["text"] == "" and payload["reply"]["text"] == EMPTY_TEXT


@pytest.mark.django_db
def test_an_oversized_push_gets_a_polite_too_large_reply(worker_settings):
    from contract.envelope import OVERSIZED_KEY

    data = robot_message("")
    data[OVERSIZED_KEY] = 300 * 1024
    payload = preprocess(envelope(data), run_id="r1")
    assert payload.reply is not None and "太大" in payload.reply.text and "256 KB" in payload.reply.text
