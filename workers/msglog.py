"""Every log line about a message carries its msgId: a contextvar, a logging.Filter, the format."""

from __future__ import annotations

import contextlib
import logging
import sys
from contextvars import ContextVar
from typing import Iterator

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


def configure_logging(level: str | int = "INFO") -> None:
    """Root handler on stderr with the msgId format; idempotent."""
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_dtbot", False):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(MessageContextFilter())
    handler._dtbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
