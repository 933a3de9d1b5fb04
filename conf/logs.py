"""The log format every process shares: message contextvars, their filter, text or JSON lines (LOG_FORMAT)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

from conf import redaction
from conf.settings import LOG_FORMATS, get_settings

redaction.install()  # every record of every logger, in every role (they all import this module)

# What a line says about the message it is about; "-" outside any message.
current_msg_id: ContextVar[str] = ContextVar("current_msg_id", default="-")
current_stage: ContextVar[str] = ContextVar("current_stage", default="-")
current_conversation: ContextVar[str] = ContextVar("current_conversation", default="-")
current_tenant: ContextVar[str] = ContextVar("current_tenant", default="-")
CONTEXT_FIELDS: dict[str, ContextVar[str]] = {
    "msg_id": current_msg_id,
    "stage": current_stage,
    "conversation": current_conversation,
    "tenant": current_tenant,
}

LOG_FORMAT = (
    "%(asctime)s %(levelname)s [%(processName)s/%(threadName)s] %(name)s "
    "msg_id=%(msg_id)s stage=%(stage)s %(message)s"
)
# LOG_FORMAT=json: one object per line with these keys (renamed as below) and any `extra=` fields.
JSON_FIELDS = (
    "%(asctime)s %(levelname)s %(name)s %(process)d %(processName)s %(threadName)s "
    "%(msg_id)s %(stage)s %(conversation)s %(tenant)s %(message)s"
)
JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger", "processName": "process_name",
                "threadName": "thread"}


class MessageContextFilter(logging.Filter):
    """Adds msg_id, stage, conversation and tenant to every record (from the contextvars unless set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in CONTEXT_FIELDS.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


@contextlib.contextmanager
def message_context(msg_id: str, stage: str, conversation: str = "", tenant: str = "") -> Iterator[None]:
    """Log lines inside this block name the message, the stage, its conversation and tenant."""
    values = {"msg_id": msg_id, "stage": stage, "conversation": conversation, "tenant": tenant}
    tokens = [(var, var.set(values[name] or "-")) for name, var in CONTEXT_FIELDS.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def make_formatter(kind: str = "text") -> logging.Formatter:
    """The formatter of LOG_FORMAT `kind` ("text" or "json")."""
    if kind == "json":
        # ensure_ascii off: Chinese text stays readable in `docker compose logs`.
        return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMES, json_ensure_ascii=False)
    if kind == "text":
        return logging.Formatter(LOG_FORMAT)
    raise ValueError(f"LOG_FORMAT must be one of {LOG_FORMATS}, not {kind!r}")


def make_handler(stream: IO[str] | None = None, kind: str | None = None) -> logging.Handler:
    """The one handler every process logs through (Django's LOGGING builds it too, via "()")."""
    if kind is None:
        kind = get_settings().log_format
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(kind))
    # Filters of every line, in order: context first, so later filters see the message's fields.
    handler.addFilter(MessageContextFilter())
    return handler


def is_ours(handler: logging.Handler) -> bool:
    return any(isinstance(f, MessageContextFilter) for f in handler.filters)


# Celery logs every task's return value at INFO: whole payloads (user text) on every stage.
# Our task wrapper logs what matters with the msgId; failures still come through at WARNING+.
# httpx logs every request URL at INFO, and a sessionWebhook URL carries its session secret.
QUIET_LOGGERS = {"celery.app.trace": "WARNING", "httpx": "WARNING", "httpcore": "WARNING"}


def configure_logging(level: str | int = "INFO", quiet: dict[str, Any] | None = None) -> None:
    """Root handler on stderr in the LOG_FORMAT of the settings, unless one of ours is installed
    (e.g. by Django's LOGGING, which builds it with make_handler)."""
    root = logging.getLogger()
    root.setLevel(level)
    for name, quiet_level in {**QUIET_LOGGERS, **(quiet or {})}.items():
        logging.getLogger(name).setLevel(quiet_level)
    if any(is_ours(handler) for handler in root.handlers):
        return
    root.addHandler(make_handler())
