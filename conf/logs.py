"""Every log line about a message carries its msgId: a contextvar, a logging.Filter, the format."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from conf import redaction

redaction.install()  # every record of every logger, in every role (they all import this module)

current_msg_id: ContextVar[str] = ContextVar("current_msg_id", default="-")
current_stage: ContextVar[str] = ContextVar("current_stage", default="-")

LOG_FORMAT = (
    "%(asctime)s %(levelname)s [%(processName)s/%(threadName)s] %(name)s "
    "msg_id=%(msg_id)s stage=%(stage)s %(message)s"
)


class MessageContextFilter(logging.Filter):
    """Adds `msg_id` and `stage` to every record (from the contextvars unless already set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "msg_id"):
            record.msg_id = current_msg_id.get()
        if not hasattr(record, "stage"):
            record.stage = current_stage.get()
        return True


@contextlib.contextmanager
def message_context(msg_id: str, stage: str) -> Iterator[None]:
    """Log lines inside this block name the message and the stage."""
    msg_token = current_msg_id.set(msg_id or "-")
    stage_token = current_stage.set(stage)
    try:
        yield
    finally:
        current_stage.reset(stage_token)
        current_msg_id.reset(msg_token)


# Celery logs every task's return value at INFO: whole payloads (user text) on every stage.
# Our task wrapper logs what matters with the msgId; failures still come through at WARNING+.
# httpx logs every request URL at INFO, and a sessionWebhook URL carries its session secret.
QUIET_LOGGERS = {"celery.app.trace": "WARNING", "httpx": "WARNING", "httpcore": "WARNING"}


def configure_logging(level: str | int = "INFO") -> None:
    """Root handler on stderr with the msgId format, unless one is installed (e.g. by Django's
    LOGGING, which uses the same filter and format)."""
    root = logging.getLogger()
    root.setLevel(level)
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)
    for handler in root.handlers:
        if any(isinstance(f, MessageContextFilter) for f in handler.filters):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(MessageContextFilter())
    root.addHandler(handler)
