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
    do_mark_reply_progress,
    do_mark_status,
    record_fields,
    reply_progress,
)
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.card_send import send_card
from workers.dingtalk.outbound import action_buttons, webhook_body
from workers.dingtalk.ratebudget import RateBudget
from workers.errors import DeliveryUnknown, PipelineError, PoisonMessage, Throttled, WebhookExpired
from workers.exits import STORE_OUTAGES
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


class ConcurrentDelivery(Exception):
    """Another run changed this reply's state first (it is sending, or has sent, the reply)."""

    def __init__(self, state: str) -> None:
        super().__init__(f"reply state is {state!r}")
        self.state = state


class PartClaim:
    """`sending:<i>` for one reply part, taken right before its request leaves (after the token,
    the rate budget and the buttons), in Redis and then in the record; released when the part is
    known not sent, so only a request that may have reached DingTalk leaves it behind."""

    def __init__(self, msg_id: str, index: int, expected: str) -> None:
        self.msg_id, self.index, self.expected = msg_id, index, expected
        self.held = False

    def take(self) -> None:
        if self.held:
            return
        mark = reply_state.sending(self.index)
        if not reply_state.swap(self.msg_id, self.expected, mark):
            now = reply_state.get(self.msg_id)
            # Redis lost the key mid-reply: this run knows where the reply is, so it goes on.
            if now != "" or not reply_state.swap(self.msg_id, "", mark):
                raise ConcurrentDelivery(now)
        try:
            do_mark_reply_progress(self.msg_id, mark)
        except Exception:
            reply_state.swap(self.msg_id, mark, self.expected)  # not sent: the retry may send it
            raise
        self.held = True

    def release(self) -> None:
        """The part is known not sent: a retry (or a replay) may send it."""
        if not self.held:
            return
        back = reply_state.next_part(self.index)
        reply_state.swap(self.msg_id, reply_state.sending(self.index), back)
        do_mark_reply_progress(self.msg_id, back)
        self.expected, self.held = back, False


def within_budget(budget: RateBudget | None, family: str, call: Callable[[], T],
                  claim: PartClaim | None = None) -> T:
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
        if claim is not None:
            claim.take()  # the last step before the request leaves
        try:
            return call()
        except Throttled:
            if claim is not None:
                claim.release()  # "too fast" means not sent
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
    budget: RateBudget | None = None, mention: bool = True, claim: PartClaim | None = None,
) -> str:
    """Send one part; returns the channel that carried it (webhook falls back on 300001).

    `claim` is taken right before each request leaves and released when it is known not sent
    (an expired webhook, "too fast")."""
    group = delivery.get("conversation_type") == "2"
    staff_id = str(delivery.get("sender_staff_id") or "")
    if channel == DeliveryChannel.WEBHOOK:
        body = webhook_body(reply, staff_id if group and mention else "")
        try:
            within_budget(budget, "webhook", lambda: api.send_webhook(delivery["session_webhook"], body), claim)
            return channel
        except WebhookExpired as exc:
            if claim is not None:
                claim.release()
            log.info("sessionWebhook expired (%s): falling back to the OpenAPI", exc)
    robot_code = str(delivery.get("robot_code") or current().settings.dingtalk_robot_code)
    if not group and not staff_id:
        raise PoisonMessage("webhook expired and the sender has no staff id for the OpenAPI")
    if api.tokens is not None:
        api.tokens.get()  # fetched (or cached) before the part is marked in flight
    if group:
        cid = str(delivery["conversation_id"])
        within_budget(budget, "robot_send", lambda: api.send_group(robot_code, cid, reply), claim)
    else:
        within_budget(budget, "robot_send", lambda: api.send_private(robot_code, staff_id, reply), claim)
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
    state = current_state(msg_id)
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
        claim = PartClaim(msg_id, index, expected)
        try:
            part = parts[index]
            robot_code = str(delivery.get("robot_code") or res.settings.dingtalk_robot_code)
            if part.kind == "card":
                claim.take()  # the card call creates and delivers in one request
                if send_card(api, budget, payload, index, part, robot_code):
                    channel = DeliveryChannel.OPENAPI.value
                else:  # no card could be shown (nothing went out): its text as markdown
                    claim.release()
                    part = Reply(text=part.text or part.title or "…", kind="markdown", title=part.title)
            if part.kind != "card":
                _remember_buttons(payload, part)
                channel = send_part(api, channel, part, delivery, budget, mention=index == 0, claim=claim)
        except ConcurrentDelivery as exc:
            return _concurrent(msg_id, exc.state, record)
        except DeliveryUnknown as exc:
            # The state stays `sending:<i>`: no retry or replay of this run resends the part.
            log.warning("reply part %d outcome unknown (%s); not resending", index, exc)
            do_mark_status(msg_id, MessageStatus.DELIVERY_UNKNOWN, error=str(exc)[:500], **record)
            return {"msg_id": msg_id, "result": "delivery_unknown"}
        except PipelineError:
            # Known not delivered: the retry (or a replay) may send this part.
            claim.release()
            raise
        expected = reply_state.next_part(index + 1) if index + 1 < len(parts) else reply_state.SENT
        try:
            if not reply_state.swap(msg_id, reply_state.sending(index), expected):
                log.warning("reply state changed under part %d (Redis lost it?); going on", index)
        except STORE_OUTAGES as exc:
            # Sent: the record says so below; the next part's claim re-seeds Redis.
            log.warning("could not record part %d as sent in Redis: %r", index, exc)
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
    do_mark_status(msg_id, MessageStatus.REPLIED, channel=channel, reply_progress=reply_state.SENT,
                   **record, **times)
    log.info("replied in %d part(s) via %s%s", len(parts), channel, f" (card {card})" if card else "")
    result = {"msg_id": msg_id, "result": "sent", "channel": channel, "parts": len(parts)}
    if card:
        result["card"] = card
    return result


def current_state(msg_id: str) -> str:
    """The reply state: Redis's, or when Redis has none (never sent, or Redis lost its keys) the
    record's, copied back into Redis so the runs of this message compare against it again."""
    state = reply_state.get(msg_id)
    if state:
        return state
    durable = reply_progress(msg_id)
    if durable:
        log.warning("no reply state in Redis; the message record says %r", durable)
        if not reply_state.swap(msg_id, "", durable):
            return reply_state.get(msg_id) or durable
    return durable


def _concurrent(msg_id: str, state: str, record: dict[str, Any]) -> dict[str, Any]:
    """Another run took the reply over: when it has already sent everything, the record says so;
    otherwise that run (sending now) writes the status."""
    if state == reply_state.SENT:
        do_mark_replied_if_pending(msg_id, **record)
        return {"msg_id": msg_id, "result": "already_sent"}
    log.warning("another run is delivering this reply (state %r); it records the outcome", state)
    return {"msg_id": msg_id, "result": "concurrent"}


def delivered_card(payload: StagePayload) -> str:
    """The outTrackId of the AI card that already carries this answer ('' for a plain reply)."""
    card = payload.reply.card if payload.reply is not None else {}
    return str(card.get("out_track_id") or "") if card.get("delivered") else ""
