"""Deliver stage: send the reply parts once per msgId, within the shared rate budget, webhook or OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from skills.api import Reply
from webapp.actions.records import (
    DeliveryChannel,
    MessageStatus,
    do_mark_replied_if_pending,
    do_mark_status,
    record_fields,
)
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.card_send import send_card
from workers.dingtalk.outbound import action_buttons, webhook_body
from workers.dingtalk.ratebudget import RateBudget
from workers.errors import DeliveryUnknown, PipelineError, PoisonMessage, Throttled, WebhookExpired
from workers.payload import StagePayload
from workers.resources import current
from workers.state import buttons, reply_state

log = logging.getLogger(__name__)
T = TypeVar("T")

# A webhook this close to its expiry is treated as expired: the request could arrive too late.
WEBHOOK_EXPIRY_MARGIN_MS = 10_000
# After DingTalk says "too fast", every worker holds this family for this long.
THROTTLE_PENALTY_SECONDS = 1.0


def choose_channel(delivery: dict[str, Any], now_ms: float) -> str:
    """The webhook while it is valid, else the OpenAPI."""
    expires_at = int(delivery.get("session_webhook_expires_at") or 0)
    if delivery.get("session_webhook") and (
        expires_at == 0 or expires_at - now_ms > WEBHOOK_EXPIRY_MARGIN_MS
    ):
        return DeliveryChannel.WEBHOOK.value
    return DeliveryChannel.OPENAPI.value


def within_budget(budget: RateBudget | None, family: str, call: Callable[[], T]) -> T:
    """One send within the family's budget; DingTalk's "too fast" holds every worker, then retries.

    A throttled call was not delivered, so repeating it cannot double the message. After
    DELIVER_THROTTLE_RETRIES in-task attempts `Throttled` goes up to the task, which re-queues
    the stage without counting it as a failure.
    """
    settings = current().settings

    def attempt() -> T:
        if budget is not None and not budget.acquire(family, timeout=settings.deliver_budget_wait_seconds):
            raise Throttled(f"no {family} budget within {settings.deliver_budget_wait_seconds:.0f} s",
                            retry_after=1.0)
        try:
            return call()
        except Throttled:
            if budget is not None:
                budget.penalize(family, THROTTLE_PENALTY_SECONDS)
            log.info("DingTalk throttled the %s call; all workers hold for %.1f s", family,
                     THROTTLE_PENALTY_SECONDS)
            raise

    retrying = Retrying(
        retry=retry_if_exception_type(Throttled),
        stop=stop_after_attempt(1 + max(0, settings.deliver_throttle_retries)),
        wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
        reraise=True,
    )
    return retrying(attempt)


def send_part(
    api: DingTalkAPI, channel: str, reply: Reply, delivery: dict[str, Any],
    budget: RateBudget | None = None, mention: bool = True,
) -> str:
    """Send one part; returns the channel that carried it (webhook falls back on 300001)."""
    group = delivery.get("conversation_type") == "2"
    staff_id = str(delivery.get("sender_staff_id") or "")
    if channel == DeliveryChannel.WEBHOOK:
        body = webhook_body(reply, staff_id if group and mention else "")
        try:
            within_budget(budget, "webhook", lambda: api.send_webhook(delivery["session_webhook"], body))
            return channel
        except WebhookExpired as exc:
            log.info("sessionWebhook expired (%s): falling back to the OpenAPI", exc)
    robot_code = str(delivery.get("robot_code") or current().settings.dingtalk_robot_code)
    if group:
        cid = str(delivery["conversation_id"])
        within_budget(budget, "robot_send", lambda: api.send_group(robot_code, cid, reply))
    elif staff_id:
        within_budget(budget, "robot_send", lambda: api.send_private(robot_code, staff_id, reply))
    else:
        raise PoisonMessage("webhook expired and the sender has no staff id for the OpenAPI")
    return DeliveryChannel.OPENAPI.value


def acked_at(msg_id: str) -> float | None:
    """When the listener ACKed the push (it writes `{prefix}acked:{msg_id}`), if known."""
    res = current()
    raw = res.redis.get(res.key(f"acked:{msg_id}"))
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _remember_buttons(payload: StagePayload, reply: Reply) -> None:
    """Before an action card goes out: its skill buttons, so a tap finds its way back."""
    taps = action_buttons(reply)
    turn = payload.turn
    if taps:
        # No skill: the router's own clarifying question; its tap goes back through routing.
        buttons.remember(turn.tenant_id, turn.conversation_id, turn.user_id, skill=turn.skill,
                         msg_id=payload.msg_id, buttons=taps)


def deliver(payload: StagePayload, api: DingTalkAPI | None = None,
            budget: RateBudget | None = None) -> dict[str, Any]:
    """Send every part not yet sent; never resend a part whose outcome is unknown."""
    res = current()
    msg_id = payload.msg_id
    parts = list(payload.replies)
    delivery = payload.delivery
    # The stage timestamps and attributes the earlier stages carried: written with the status.
    record = record_fields(payload.record)
    state = reply_state.get(msg_id)
    if state == reply_state.SENT:
        log.info("reply already sent; nothing to do")
        do_mark_replied_if_pending(msg_id, **record)
        return {"msg_id": msg_id, "result": "already_sent"}
    start = reply_state.first_unsent(state)
    if start is None:
        log.warning(
            "a previous attempt crashed while sending (%s): outcome unknown, not resending", state
        )
        do_mark_status(msg_id, MessageStatus.DELIVERY_UNKNOWN, error=f"reply state {state}", **record)
        return {"msg_id": msg_id, "result": "delivery_unknown"}
    api = api or res.dingtalk
    budget = budget or res.rate_budget
    channel = choose_channel(delivery, res.clock.time() * 1000)
    expected = state
    for index in range(start, len(parts)):
        if not reply_state.swap(msg_id, expected, reply_state.sending(index)):
            log.warning("another run is delivering this reply; stopping")
            return {"msg_id": msg_id, "result": "concurrent"}
        try:
            part = parts[index]
            robot_code = str(delivery.get("robot_code") or res.settings.dingtalk_robot_code)
            if part.kind == "card" and send_card(api, budget, payload, index, part, robot_code):
                channel = DeliveryChannel.OPENAPI.value
            else:
                if part.kind == "card":  # no card could be shown: its text as markdown
                    part = Reply(text=part.text or part.title or "…", kind="markdown", title=part.title)
                _remember_buttons(payload, part)
                channel = send_part(api, channel, part, delivery, budget, mention=index == 0)
        except DeliveryUnknown as exc:
            # The state stays `sending:<i>`: no retry or replay of this run resends the part.
            log.warning("reply part %d outcome unknown (%s); not resending", index, exc)
            do_mark_status(msg_id, MessageStatus.DELIVERY_UNKNOWN, error=str(exc)[:500], **record)
            return {"msg_id": msg_id, "result": "delivery_unknown"}
        except PipelineError:
            # Known not delivered: the retry (or a replay) may send this part.
            reply_state.swap(msg_id, reply_state.sending(index), reply_state.next_part(index))
            raise
        expected = reply_state.next_part(index + 1) if index + 1 < len(parts) else reply_state.SENT
        reply_state.swap(msg_id, reply_state.sending(index), expected)
    if not parts:
        reply_state.swap(msg_id, expected, reply_state.SENT)
    card = delivered_card(payload)
    if card:
        # The answer went out as an AI card in run_skill; the parts (if any) were its overflow.
        channel = DeliveryChannel.CARD.value
    times: dict[str, Any] = {"replied_at": res.clock.time()}
    acked = acked_at(msg_id)
    if acked:
        times["acked_at"] = acked
    do_mark_status(msg_id, MessageStatus.REPLIED, channel=channel, **record, **times)
    log.info("replied in %d part(s) via %s%s", len(parts), channel, f" (card {card})" if card else "")
    result = {"msg_id": msg_id, "result": "sent", "channel": channel, "parts": len(parts)}
    if card:
        result["card"] = card
    return result


def delivered_card(payload: StagePayload) -> str:
    """The outTrackId of the AI card that already carries this answer ('' for a plain reply)."""
    card = payload.reply.card if payload.reply is not None else {}
    return str(card.get("out_track_id") or "") if card.get("delivered") else ""
