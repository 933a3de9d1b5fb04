"""Session context in Redis: the last turns of one conversation scope, TTL sliding on every use.

The scope is tenant + conversation + user. In groups SESSION_GROUP_SCOPE=shared makes the whole
group one scope (every entry then names its speaker); private chats are always per user.
The TTL is Redis's own (a relative EXPIRE on every read and write), so it follows the Redis
server's clock and no worker's: a host with a wrong clock cannot end or prolong a session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

from workers.payload import StagePayload
from workers.resources import LuaScript, current

GROUP_SCOPE = "*group*"  # the user part of a shared group session's key (not a valid user id)

# KEYS: session. ARGV: msg_id ('' = no check), entries to keep, ttl, entries... Appends unless an
# entry of this msgId is already there (a retried or redelivered postprocess), in one round trip.
_APPEND_ONCE = LuaScript("""
if ARGV[1] ~= '' then
  for _, item in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
    local ok, entry = pcall(cjson.decode, item)
    if ok and type(entry) == 'table' and entry['msg_id'] == ARGV[1] then
      redis.call('EXPIRE', KEYS[1], ARGV[3])
      return 0
    end
  end
end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
""")


def scope_user(conversation_type: str, user_id: str) -> str:
    """Whose session a message belongs to: the user, or the whole group when groups share one."""
    if conversation_type == "2" and current().settings.session_group_scope == "shared":
        return GROUP_SCOPE
    return user_id


def session_key(tenant_id: str, conversation_id: str, user_id: str) -> str:
    """Keyed by tenant + conversation + scope user, so no context leaks between chats or users."""
    return current().key(f"session:{tenant_id}:{conversation_id}:{user_id}")


def _decode(raw: list[str]) -> list[dict[str, str]]:
    history: list[dict[str, str]] = []
    for item in raw:
        try:
            entry = json.loads(item)
        except ValueError:
            continue  # a corrupt entry costs one turn of context, not the message
        if isinstance(entry, dict):
            clean = {str(k): str(v) for k, v in entry.items()}
            # Chat-completion style readers (llm_chat) want "content"; the store keeps "text".
            clean.setdefault("content", clean.get("text", ""))
            history.append(clean)
    return history


def load_history(
    tenant_id: str, conversation_id: str, user_id: str, conversation_type: str = "1"
) -> list[dict[str, str]]:
    """The remembered turns, oldest first ([] when the session expired); reading restarts the TTL."""
    res = current()
    skey = session_key(tenant_id, conversation_id, scope_user(conversation_type, user_id))
    pipe = res.redis.pipeline(transaction=False)
    pipe.lrange(skey, 0, -1)
    pipe.expire(skey, res.settings.session_ttl_seconds)
    raw, _ = pipe.execute()
    return _decode(raw)


def append_turn(
    tenant_id: str,
    conversation_id: str,
    user_id: str,
    entries: list[dict[str, Any]],
    conversation_type: str = "1",
    msg_id: str = "",
) -> bool:
    """Append entries ({"role", "text"}), keep the last N turns, restart the TTL; False when the
    turn of `msg_id` is already there (a retried stage appends a turn once).

    Each entry is stamped with the user it belongs to, so a shared group session still knows
    whose words are whose (for the skills, and for per-user erasure), and with its msgId.
    """
    res = current()
    settings = res.settings
    skey = session_key(tenant_id, conversation_id, scope_user(conversation_type, user_id))
    # One turn = the user's entry plus the assistant's entry.
    keep = max(1, settings.session_max_turns) * 2
    stamped = [{**e, "user": user_id, **({"msg_id": msg_id} if msg_id else {})} for e in entries]
    return bool(_APPEND_ONCE([skey], [msg_id, keep, settings.session_ttl_seconds,
                                      *[json.dumps(e, ensure_ascii=False) for e in stamped]]))


# --- per-user export and erasure ------------------------------------------------------------

def _session_keys(tenant_id: str) -> Iterator[str]:
    res = current()
    pattern = res.key(f"session:{tenant_id}:*") if tenant_id else res.key("session:*")
    yield from res.redis.scan_iter(match=pattern, count=1000)


def _owner_of(skey: str, user_id: str) -> str:
    """user_id, GROUP_SCOPE or "" (someone else): user ids may contain ':' ($:LWCP_v1:$...)."""
    for owner in (user_id, GROUP_SCOPE):
        if skey.endswith(":" + owner):
            return owner
    return ""


def export_user(tenant_id: str, user_id: str) -> list[dict[str, Any]]:
    """Every remembered entry of this user: own sessions whole, shared group sessions filtered."""
    client = current().redis
    found = []
    for skey in _session_keys(tenant_id):
        owner = _owner_of(skey, user_id)
        if not owner:
            continue
        entries = _decode(cast("list[str]", client.lrange(skey, 0, -1)))
        if owner == GROUP_SCOPE:
            entries = [e for e in entries if e.get("user") == user_id]
        if entries:
            found.append({"key": skey, "shared": owner == GROUP_SCOPE, "entries": entries,
                          "ttl_seconds": client.ttl(skey)})
    return found


def erase_user(tenant_id: str, user_id: str) -> int:
    """Delete this user's sessions and their entries in shared group sessions; returns entries removed."""
    client = current().redis
    removed = 0
    for skey in list(_session_keys(tenant_id)):
        owner = _owner_of(skey, user_id)
        if owner == user_id:
            removed += client.llen(skey)
            client.delete(skey)
        elif owner == GROUP_SCOPE:
            for item in cast("list[str]", client.lrange(skey, 0, -1)):
                try:
                    mine = json.loads(item).get("user") == user_id
                except (ValueError, AttributeError):
                    mine = False
                if mine:
                    removed += client.lrem(skey, 0, item)
    return removed


def refresh_history(payload: StagePayload) -> StagePayload:
    """The stage payload with the turn's history re-read (after earlier messages were answered)."""
    turn = payload.turn
    if not turn.user_id:
        return payload
    history = load_history(turn.tenant_id, turn.conversation_id, turn.user_id, turn.conversation_type or "1")
    return payload.replace(turn=turn.replace(history=history))
