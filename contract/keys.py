"""Redis keys and values that more than one process reads or writes (the workers own them; a replay
from the webapp clears them): the msgId claim and the reply state.

Names are relative to REDIS_KEY_PREFIX; each process adds its prefix. Renaming one strands the
state of messages in flight, like renaming a queue.

States of the reply key: absent (nothing sent), `next:<i>` (parts before i sent, nothing in
flight), `sending:<i>` (part i in flight: a retry that finds it does not know the outcome and
never resends it), `sent` (done).
"""

from __future__ import annotations

REPLY_SENT = "sent"
_SENDING = "sending:"


def claim(msg_id: str) -> str:
    """The msgId claim (SET NX; its value is the run id of the pipeline run that owns it)."""
    return f"claim:{msg_id}"


def reply(msg_id: str) -> str:
    """The reply state of msg_id."""
    return f"reply:{msg_id}"


def reply_sending(index: int) -> str:
    return f"{_SENDING}{index}"


def reply_next(index: int) -> str:
    return f"next:{index}"


def state_for_replay(state: str) -> str | None:
    """The reply state an operator's replay sets, or None to leave it as it is.

    An in-flight mark becomes "not sent" (replaying is the operator's decision to resend that
    part); a sent reply stays sent, so a replay never answers twice.
    """
    if state.startswith(_SENDING):
        return reply_next(int(state[len(_SENDING):]))
    return None


# The listeners' readiness, for the web's /readyz (ingest writes, the webapp reads; neither imports
# the other). Each listener SADDs its instance name to the set and refreshes its own key (a JSON
# object {"ready", "live", "stream", "broker", "at"}) with a TTL, so a dead listener's key expires.
LISTENERS = "ingest:listeners"


def listener_ready(instance: str) -> str:
    """The readiness key of one listener instance (host:pid)."""
    return f"ingest:ready:{instance}"
