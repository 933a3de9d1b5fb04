"""The busy notice: one short "busy, N ahead of you" message, at most once per msgId, when a routed
message's predicted wait for an AI answer slot exceeds BUSY_NOTICE_SECONDS."""

from __future__ import annotations

import logging

from skills import registry
from skills.api import Reply
from workers import governor, metrics, phrases
from workers.payload import StagePayload
from workers.resources import current
from workers.stages.deliver import choose_channel, send_part

log = logging.getLogger(__name__)

# A notice is worth little if it waits for budget the answers need: take it at once or skip it.
BUDGET_WAIT_SECONDS = 0.2


def notice_key(msg_id: str) -> str:
    return current().key(f"busy:{msg_id}")


def check(payload: StagePayload) -> governor.Queueing | None:
    """Register the message with its AI core's governor and send the notice if its wait is long;
    where it stands (None: its skill holds no AI-core slot). Never raises: a notice is a courtesy."""
    if payload.reply is not None:
        return None
    res = current()
    gov = governor.current()
    if not gov.enabled:
        return None
    turn = payload.turn
    try:
        endpoint = res.skill_settings.skill(turn.tenant_id, turn.skill or registry.FALLBACK_SKILL).ai_core()
        if not endpoint:
            return None
        standing = gov.enqueue(endpoint, turn.msg_id)
    except Exception:  # the skill cannot be built or Redis is away: run_skill reports it
        log.warning("could not predict the wait for an answer slot", exc_info=True)
        return None
    if standing.wait_seconds > res.settings.busy_notice_seconds:
        log.info("predicted wait %.1f s for an answer slot (%d ahead): telling the user",
                 standing.wait_seconds, standing.ahead)
        notify(payload, standing.ahead)
    return standing


def notify(payload: StagePayload, ahead: int) -> bool:
    """Send the notice unless this message already had one (a retry, a redelivered copy); whether sent."""
    res = current()
    turn = payload.turn
    try:
        channel = choose_channel(payload.delivery, res.clock.time() * 1000)
        family = "webhook" if channel == "webhook" else "robot_send"
        if not res.rate_budget.acquire(family, timeout=BUDGET_WAIT_SECONDS):
            log.info("no %s budget for the busy notice now; skipped", family)
            return False
        if not res.redis.set(notice_key(turn.msg_id), "1", nx=True, ex=res.settings.dedup_ttl_seconds):
            return False  # this message was told already
        send_part(res.dingtalk, channel, Reply(text=phrases.busy_notice(turn.text, turn.locale, ahead)),
                  payload.delivery, budget=None, mention=True)
        metrics.count_message("busy_notice")
        return True
    except Exception:  # the answer still comes; only the courtesy is lost
        log.warning("could not send the busy notice", exc_info=True)
        return False
