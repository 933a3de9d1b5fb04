"""JSON writing on the per-message path: orjson, with the standard library for what orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import orjson

# orjson writes an envelope ~15x faster than `json` (10 µs → 0.6 µs), and the listener writes
# every push (task message body) and every ACK frame on one GIL. Reading stays with `json`:
# orjson.loads silently turns integers beyond 64 bits into floats. orjson refuses to write such
# integers and lone surrogates: those go through `json`. It writes NaN/Infinity (which only
# `json` reads, and DingTalk never sends) as null, which is at least valid JSON.


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; raises TypeError/ValueError for what JSON cannot hold."""
    try:
        return orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        # ensure_ascii (the default): a lone surrogate is written as an escape, not refused.
        return json.dumps(obj, separators=(",", ":")).encode()


def dumps_text(obj: Any) -> str:
    """`dumps` as a str (a WebSocket text frame, a string field of a frame)."""
    return dumps(obj).decode()
