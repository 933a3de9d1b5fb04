"""The reminder sweep: claim due reminders and send each firing proactively through the robot OpenAPI.

Beat runs `dtbot.reminders.sweep` every REMINDER_SWEEP_SECONDS; nothing waits in the broker
(no ETA/countdown tasks), so a restart loses nothing: the rows are the schedule.

The guarantee, per firing (one due occurrence of one reminder):
- claimed once: `claim_due_reminders` locks due rows FOR UPDATE SKIP LOCKED and the unique
  (reminder, occurrence_at) firing row makes a second claim impossible, across sweepers and restarts;
- sent at most once: before the HTTP call the firing's send marker
  (`{prefix}reminder-send:{delivery_key}`) moves absent/`retry:` → `sending:<t>` by compare-and-set,
  and only a run that made that move sends; after DingTalk accepts it becomes `sent`, then the
  firing row is marked delivered;
- sent exactly once, except when a process dies during the HTTP call itself: then nobody knows
  whether DingTalk got it, and the firing is flagged "delivery unknown" (admin) instead of being
  sent twice. A crash after the claim but before the call is re-sent (`undelivered_firings`); a
  crash after the call but before `mark_delivered` is found `sent` and only recorded.
Known-unsent failures (network, 5xx, throttling) are retried with backoff up to MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any, cast

import redis

from skills.api import Reply
from webapp.actions.reminders import (
    claim_due_reminders,
    mark_delivered,
    mark_failed,
    undelivered_firings,
)
from workers.dingtalk.api import DingTalkAPI
from workers.errors import PoisonMessage, TransientError
from workers.resources import current
from workers.state import reply_state

log = logging.getLogger(__name__)

SENT = "sent"
RETRY_BACKOFF_MAX_SECONDS = 600.0


def marker_key(delivery_key: str) -> str:
    return current().key(f"reminder-send:{delivery_key}")


def _swap(name: str, expected: str, new: str) -> bool:
    return reply_state.compare_and_set(name, expected, new)


def in_flight_seconds() -> float:
    """How long a send may legitimately take (token fetch + send + one token refresh)."""
    return 4 * current().settings.http_timeout_seconds + 5


def send_reminder(api: DingTalkAPI, firing: dict[str, Any]) -> None:
    """One proactive message: the user's 1:1 chat with the robot (batchSend), or the group."""
    robot_code = current().settings.dingtalk_robot_code
    reply = Reply(text=str(firing["text"]))
    if firing.get("conversation_type") == "2" and firing.get("conversation_id"):
        api.send_group(robot_code, str(firing["conversation_id"]), reply)
    else:
        api.send_private(robot_code, str(firing["user_id"]), reply)


def _budget(timeout: float) -> bool:
    """A robot-send token of the shared DingTalk budget (fails open when Redis cannot answer)."""
    try:
        return current().rate_budget.acquire("robot_send", timeout)
    except redis.RedisError as exc:
        log.warning("rate budget unavailable, sending anyway: %r", exc)
        return True


def deliver_firing(api: DingTalkAPI, firing: dict[str, Any], now: float | None = None) -> str:
    """Send one firing unless its marker says it went (or may have gone) already; returns what happened."""
    res = current()
    now = res.clock.time() if now is None else now
    firing_id = int(firing["firing_id"])
    name = marker_key(str(firing["delivery_key"]))
    state = cast("str | None", res.redis.get(name)) or ""  # a decode_responses client: strings
    if state == SENT:
        mark_delivered(firing_id)  # the previous run died between the send and this record
        return "already_sent"
    if state.startswith("sending:"):
        if now - float(state.split(":", 1)[1]) < in_flight_seconds():
            return "in_flight"  # another sweep is sending it right now
        log.error("reminder firing %s: a send was interrupted, outcome unknown; not resending", firing_id)
        mark_failed(firing_id, "delivery unknown: a send was interrupted (not resent)", give_up=True)
        return "unknown"
    if state.startswith("retry:") and float(state.split(":", 1)[1]) > now:
        return "later"
    if not _budget(timeout=5.0):
        return "later"
    if not _swap(name, state, f"sending:{now}"):
        return "concurrent"
    try:
        send_reminder(api, firing)
    except (TransientError, PoisonMessage) as exc:
        # Known not delivered: free the marker for a later sweep (or stop, if DingTalk refused it).
        give_up = isinstance(exc, PoisonMessage)
        attempts = int(firing.get("attempts") or 0) + 1
        backoff = min(RETRY_BACKOFF_MAX_SECONDS, res.settings.reminder_sweep_seconds * 2 ** attempts)
        _swap(name, f"sending:{now}", f"retry:{now + backoff}")
        mark_failed(firing_id, f"{type(exc).__name__}: {exc}", give_up=give_up)
        log.warning("reminder firing %s not sent (%s): %s", firing_id,
                    "giving up" if give_up else f"retry in ≥ {backoff:.0f} s", exc)
        return "failed"
    _swap(name, f"sending:{now}", SENT)
    mark_delivered(firing_id)
    log.info("reminder firing %s sent (reminder %s)", firing_id, firing["reminder_id"])
    return "sent"


def sweep(api: DingTalkAPI | None = None) -> dict[str, int]:
    """Claim what is due, send it, and send again what an earlier sweep left undelivered."""
    res = current()
    settings = res.settings
    fresh = claim_due_reminders()
    stale = undelivered_firings(older_than=timedelta(seconds=settings.reminder_resend_after_seconds))
    fresh_ids = {f["firing_id"] for f in fresh}
    todo = fresh + [f for f in stale if f["firing_id"] not in fresh_ids]
    outcomes: Counter[str] = Counter()
    if todo:
        api = api or res.dingtalk
        for firing in todo:
            outcomes[deliver_firing(api, firing)] += 1
        log.info("reminder sweep: %d claimed, %d re-sent: %s", len(fresh), len(todo) - len(fresh),
                 dict(outcomes))
    return {"claimed": len(fresh), "resent": len(todo) - len(fresh), **outcomes}
