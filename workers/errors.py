"""The error vocabulary of the pipeline: one exit per kind (retry, dead letter, apology)."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of errors the task wrapper knows how to route."""


class TransientError(PipelineError):
    """Retry this stage later (network blip, 5xx, rate limit); nothing is lost."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PoisonMessage(PipelineError):
    """This payload can never succeed as is: dead-letter it with the reason."""


class DuplicateMessage(PipelineError):
    """Another pipeline run already owns this msgId: stop quietly."""


class NothingToAnswer(PipelineError):
    """The push needs no reply from this pipeline (e.g. an event topic with no handler yet)."""


class DeliveryUnknown(PipelineError):
    """The request may have reached DingTalk (read timeout, connection lost after sending): the
    outcome is unknown, so the reply is not sent again (at most once) and the record says so."""
