"""Session context in Redis: the last turns of one user in one conversation, TTL sliding."""

from __future__ import annotations

import json
from typing import Any

from conf.settings import get_settings
from workers.runtime import key, redis_client


def session_key(tenant_id: str, conversation_id: str, user_id: str) -> str:
    """Keyed by tenant + conversation + user, so no context leaks between chats or users."""
    return key(f"session:{tenant_id}:{conversation_id}:{user_id}")


def load_history(tenant_id: str, conversation_id: str, user_id: str) -> list[dict[str, str]]:
    """The remembered turns, oldest first ([] when the session expired)."""
    raw = redis_client().lrange(session_key(tenant_id, conversation_id, user_id), 0, -1)
    history: list[dict[str, str]] = []
    for item in raw:
        try:
            entry = json.loads(item)
        except ValueError:
            continue  # a corrupt entry costs one turn of context, not the message
        if isinstance(entry, dict):
            history.append({str(k): str(v) for k, v in entry.items()})
    return history


def append_turn(
    tenant_id: str, conversation_id: str, user_id: str, entries: list[dict[str, Any]]
) -> None:
    """Append entries ({"role", "text"}), keep the last N turns, restart the TTL."""
    settings = get_settings()
    skey = session_key(tenant_id, conversation_id, user_id)
    # One turn = the user's entry plus the assistant's entry.
    keep = max(1, settings.session_max_turns) * 2
    pipe = redis_client().pipeline(transaction=True)
    pipe.rpush(skey, *[json.dumps(e, ensure_ascii=False) for e in entries])
    pipe.ltrim(skey, -keep, -1)
    pipe.expire(skey, settings.session_ttl_seconds)
    pipe.execute()
