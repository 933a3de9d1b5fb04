"""The error vocabulary of the workers: what can go wrong, by kind; `workers.exits` gives each kind its one exit.

Kinds the task wrapper routes (retry, re-queue, dead letter, quiet stop) derive from
PipelineError; the others are raised and caught inside the workers (a card call, a media fetch,
a webhook) and are turned into one of those kinds, or a polite reply, where they are caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workers.payload import Order


class PipelineError(Exception):
    """Base of errors the task wrapper knows how to route."""


class TransientError(PipelineError):
    """Retry this stage later (network blip, 5xx, rate limit); nothing is lost."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Throttled(TransientError):
    """DingTalk said "too fast" (403 QpsLimitForApi, 429, webhook errcode 130101/90002/90018):
    the message was not sent; the stage is re-queued without counting it as a failure."""


class PoisonMessage(PipelineError):
    """This payload can never succeed as is: dead-letter it with the reason."""


class DuplicateMessage(PipelineError):
    """Another pipeline run already owns this msgId: stop quietly."""


class NothingToAnswer(PipelineError):
    """The push needs no reply from this pipeline (e.g. an event topic with no handler yet)."""


class DeliveryUnknown(PipelineError):
    """The request may have reached DingTalk (read timeout, connection lost after sending): the
    outcome is unknown, so the reply is not sent again (at most once) and the record says so."""


class WaitForTurn(PipelineError):
    """Earlier messages of the conversation are not finished: re-queue this stage in `countdown` s
    with the payload's `order` replaced by this one (it notes since when it waits); not a failure."""

    def __init__(self, order: Order, countdown: float, ahead: int) -> None:
        super().__init__(f"{ahead} earlier message(s) of the conversation still running")
        self.order = order
        self.countdown = countdown
        self.ahead = ahead


class SkillTimeout(Exception):
    """The skill did not answer within its timeout (run_skill answers with the apology)."""


class WebhookExpired(Exception):
    """The sessionWebhook no longer exists (errcode 300001): deliver uses the OpenAPI instead."""


class MediaRejected(Exception):
    """A file the user sent cannot be handed to a skill; `reason` picks the polite reply."""

    def __init__(self, reason: str, detail: str = "", **values: Any) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # too_large | bad_type | unavailable
        self.values = values


# --- the card API's own kinds: retried inside one card call, never seen by the task wrapper -----

DENIED_CODE_PREFIX = "Forbidden.AccessDenied"  # a missing permission (Card.Instance.Write, …)


class CardError(Exception):
    """A card call failed for good (after the retries that made sense)."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def denied(self) -> bool:
        return self.status == 403 or self.code.startswith(DENIED_CODE_PREFIX)


class CardUnavailable(CardError):
    """No card can be shown for this answer (no template, no permission, creation failed): send markdown.

    `remaining`, when set by the streamer, yields the whole answer (what was already read first).
    """

    remaining: Iterator[str] | None = None


class CardThrottled(CardError):
    """DingTalk said 'too fast' to a card call (403 QpsLimitForApi / errcode 130101); the same call
    is repeated after a pause, within the call's own deadline."""


class CardTransient(CardError):
    """Network trouble or a 5xx on a card call; the same call (same guid) may be retried safely."""
