"""What Redis remembers about cards: which skill owns one (outTrackId → message, skill, delivery target), Stop flags.

Whoever creates an interactive or AI card calls `remember`; a card callback (button, form, Stop)
is then routed to that skill in that conversation, without intent routing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis as redis_lib

from workers.resources import current

log = logging.getLogger(__name__)

OWNER_FIELDS = (
    "msg_id", "skill", "tenant_id", "conversation_id", "conversation_type", "user_id", "user_nick",
    "locale", "delivery", "buttons", "kind",
)
# The kind of a streamed answer's card: it takes a Stop from its asker and nothing else.
AI_CARD = "ai_card"
INTERACTIVE = "interactive"


def owner_key(out_track_id: str) -> str:
    return current().key(f"cardowner:{out_track_id}")


def owner_for(turn: dict[str, Any], delivery: dict[str, Any], buttons: dict[str, Any] | None = None,
              kind: str = INTERACTIVE) -> dict[str, Any]:
    """The owner record of a card answering `turn` (a Turn dict); `buttons`: {actionId: {action, params}}.
    Callbacks are checked against it (workers.dingtalk.callbacks.refusal): corp, asker, group."""
    return {
        "kind": kind,
        "msg_id": turn.get("msg_id", ""),
        "skill": turn.get("skill", ""),
        "tenant_id": turn.get("tenant_id", ""),
        "conversation_id": turn.get("conversation_id", ""),
        "conversation_type": turn.get("conversation_type", ""),
        "user_id": turn.get("user_id", ""),
        "user_nick": turn.get("user_nick", ""),
        "locale": turn.get("locale", "zh-CN"),
        "delivery": dict(delivery),
        "buttons": dict(buttons or {}),
    }


def remember(out_track_id: str, owner: dict[str, Any], ttl_seconds: int | None = None) -> None:
    """Keep the owner as long as a user may still click the card (DEDUP_TTL_SECONDS by default)."""
    res = current()
    ttl = ttl_seconds or res.settings.dedup_ttl_seconds
    record = {k: owner.get(k) for k in OWNER_FIELDS}
    res.redis.set(owner_key(out_track_id), json.dumps(record, ensure_ascii=False), ex=ttl)


def lookup(out_track_id: str) -> dict[str, Any] | None:
    raw = current().redis.get(owner_key(out_track_id)) if out_track_id else None
    if not raw:
        return None
    try:
        owner = json.loads(raw)
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


def export_user(tenant_id: str, user_id: str) -> list[dict[str, Any]]:
    """Cards answering this user (per-user export)."""
    return [owner for _, owner in _owned_by(tenant_id, user_id)]


def erase_user(tenant_id: str, user_id: str) -> int:
    """Forget the cards answering this user; returns how many."""
    keys = [k for k, _ in _owned_by(tenant_id, user_id)]
    if keys:
        current().redis.delete(*keys)
    return len(keys)


def _owned_by(tenant_id: str, user_id: str) -> list[tuple[str, dict[str, Any]]]:
    res = current()
    client = res.redis
    found = []
    for okey in client.scan_iter(match=res.key("cardowner:*"), count=1000):
        raw = client.get(okey)
        try:
            owner = json.loads(raw) if raw else None
        except ValueError:
            continue
        if isinstance(owner, dict) and owner.get("user_id") == user_id and (
            not tenant_id or owner.get("tenant_id") == tenant_id
        ):
            found.append((okey, owner))
    return found


class CancelFlags:
    """Stop-button flags in Redis (`{prefix}cancel:{outTrackId}`), set by the card-callback handler."""

    def __init__(self, client: redis_lib.Redis, prefix: str, ttl_seconds: int = 600) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds

    def key(self, out_track_id: str) -> str:
        return f"{self.prefix}cancel:{out_track_id}"

    def request(self, out_track_id: str) -> None:
        self.client.set(self.key(out_track_id), "1", ex=self.ttl_seconds)

    def __call__(self, out_track_id: str) -> bool:
        try:
            return bool(self.client.exists(self.key(out_track_id)))
        except redis_lib.RedisError as exc:
            # A Redis hiccup must not fail the answer; Stop works again when Redis is back.
            log.warning("cannot read the stop flag of %s: %r", out_track_id, exc)
            return False
