"""The listener's JSON writer: orjson's speed, and everything `json` can write still written."""

from __future__ import annotations

import json

import pytest

from ingest import fastjson


@pytest.mark.parametrize(
    "obj",
    [
        {"msg_id": "m1", "payload": {"text": {"content": "你好"}, "n": 1.25, "ok": False, "none": None}},
        {"big": 2**70, "negative": -(2**64)},  # beyond 64 bits: orjson refuses, json writes it
        {"s": "\ud800"},  # a lone surrogate (json.loads makes one from "\\ud800")
        {"createAt": 1732512345678, "f": 0.1},
    ],
)
def test_what_json_reads_is_written_back_exactly(obj):
    data = fastjson.dumps(obj)
    assert isinstance(data, bytes)
    assert json.loads(data) == obj


def test_output_is_compact_utf8():
    assert fastjson.dumps({"a": "中", "b": [1, 2]}) == '{"a":"中","b":[1,2]}'.encode()
    assert fastjson.dumps_text({"a": 1}) == '{"a":1}'


def test_what_json_cannot_hold_is_refused_with_a_type_error():
    with pytest.raises(TypeError):
        fastjson.dumps({"x": object()})
