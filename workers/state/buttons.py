"""Tap-to-send buttons: remember a card's skill buttons per asker; a tap's text comes back as the button.

A webhook action card cannot call the bot back; its buttons are `dtmd://…sendMessage` links that
make the user's client send the button title. The titles are remembered for BUTTON_TTL_SECONDS
per (tenant, conversation, user), the newest card replacing older ones, and a matching text is
turned into `{"type": "button", "action", "params"}` for the skill that sent the card — once.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

from workers.resources import current

# KEYS[1] the asker's buttons. ARGV: normalised title, msgId of the tap. The first tap uses the
# card up; the same message asking again (a retried or redelivered task) gets the same answer.
_TAKE = """
local found = redis.call('HGET', KEYS[1], ARGV[1])
if not found then return false end
local used = redis.call('HGET', KEYS[1], '__used_by')
if used and used ~= ARGV[2] then return false end
redis.call('HSET', KEYS[1], '__used_by', ARGV[2])
return found
"""


def normalise(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip().casefold()


def buttons_key(tenant_id: str, conversation_id: str, user_id: str) -> str:
    return current().key(f"buttons:{tenant_id}:{conversation_id}:{user_id}")


def remember(
    tenant_id: str, conversation_id: str, user_id: str, *, skill: str, msg_id: str,
    buttons: list[dict[str, Any]],
) -> None:
    """The card's skill buttons replace whatever this asker had before."""
    if not buttons:
        return
    bkey = buttons_key(tenant_id, conversation_id, user_id)
    mapping = {
        normalise(str(b["title"])): json.dumps(
            {"action": str(b["action"]), "params": b.get("params") or {}, "skill": skill, "msg_id": msg_id},
            ensure_ascii=False,
        )
        for b in buttons
    }
    res = current()
    pipe = res.redis.pipeline(transaction=True)
    pipe.delete(bkey)
    pipe.hset(bkey, mapping=cast("dict[Any, str]", mapping))  # redis-py types its keys as an invariant union
    pipe.expire(bkey, res.settings.button_ttl_seconds)
    pipe.execute()


def take(tenant_id: str, conversation_id: str, user_id: str, text: str, msg_id: str) -> dict[str, Any] | None:
    """The button this text taps, or None; a card's buttons serve one tap (one msgId)."""
    if not text or len(text) > 200:
        return None
    raw = current().redis.eval(_TAKE, 1, buttons_key(tenant_id, conversation_id, user_id), normalise(text), msg_id)
    if not raw:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _keys_of(tenant_id: str, user_id: str) -> list[str]:
    res = current()
    pattern = res.key(f"buttons:{tenant_id}:*") if tenant_id else res.key("buttons:*")
    return [k for k in res.redis.scan_iter(match=pattern, count=1000) if k.endswith(":" + user_id)]


def export_user(tenant_id: str, user_id: str) -> list[dict[str, Any]]:
    """The remembered buttons of this user (per-user export)."""
    client = current().redis
    return [{"key": k, "buttons": {t: json.loads(v) for t, v in client.hgetall(k).items() if t != "__used_by"}}
            for k in _keys_of(tenant_id, user_id)]


def erase_user(tenant_id: str, user_id: str) -> int:
    keys = _keys_of(tenant_id, user_id)
    if keys:
        current().redis.delete(*keys)
    return len(keys)
