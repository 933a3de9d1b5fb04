"""Reply idempotency per msgId in Redis: which parts went out, and whether one is in flight.

The key and its states (absent, `next:<i>`, `sending:<i>`, `sent`) are a contract with the
webapp's replay: `contract.keys`.
"""

from __future__ import annotations

from typing import cast

from contract import keys
from workers.resources import LuaScript, current

SENT = keys.REPLY_SENT

# Compare-and-set: a state change only happens from the state the caller saw.
_CAS = LuaScript("""
local current = redis.call('GET', KEYS[1])
if current == false then current = '' end
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
""")


def reply_key(msg_id: str) -> str:
    return current().key(keys.reply(msg_id))


def get(msg_id: str) -> str:
    """The current state ('' when nothing was sent)."""
    return cast("str | None", current().redis.get(reply_key(msg_id))) or ""  # decoded: strings


def compare_and_set(name: str, expected: str, new: str) -> bool:
    """Set Redis key `name` from `expected` ('' = absent) to `new`; False if it held another value."""
    return bool(_CAS([name], [expected, new, current().settings.dedup_ttl_seconds]))


def swap(msg_id: str, expected: str, new: str) -> bool:
    """Move from `expected` ('' = absent) to `new`; False if another run changed it first."""
    return compare_and_set(reply_key(msg_id), expected, new)


def sending(index: int) -> str:
    return keys.reply_sending(index)


def next_part(index: int) -> str:
    return keys.reply_next(index)


def first_unsent(state: str) -> int | None:
    """Index of the first part still to send, or None when the state forbids sending."""
    if state == "":
        return 0
    if state.startswith("next:"):
        return int(state.split(":", 1)[1])
    return None
