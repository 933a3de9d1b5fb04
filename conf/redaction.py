"""Redaction of every log record: tokens, secrets, sessionWebhook URLs, Authorization headers, personal data.

`install()` (one line in conf/logs.py, which every role imports) wraps the log-record factory, so
each record of every logger — ours, Celery's, Django's, httpx's — is redacted once when it is made,
before any handler or formatter (JSON or plain) sees it: its message with the arguments filled in,
the formatted traceback and the stack. `RedactingFilter` does the same for a handler that should
redact records made elsewhere. Besides the patterns, the values of secrets the process knows
(the environment's, and those decrypted from the database: `remember`) are replaced wherever they
appear, whatever the format.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any

from conf import masking

MARK = "***"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xyz / Basic xyz (a header dumped as text or as a dict)
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic|token)\s+)?[^\s'\",;}]+"),
     r"\1" + MARK),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + MARK),
    # URL query parameters that carry a secret: sessionWebhook's session, access_token, sign, key...
    (re.compile(r"(?i)([?&](?:session|access_?token|token|sign|signature|key|api_?key|secret|password|code)=)"
                r"[^&\s'\"#]+"), r"\1" + MARK),
    # user:password@ in a URL (database, broker, vector store)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@'\"]*:)[^@\s/'\"]+@"), r"\1" + MARK + "@"),
    # "appSecret": "..." (appKey is the public client id), access_token=..., x-acs-dingtalk-access-token: ...
    # (matched from the keyword on: a name's prefix such as "app" or "x-acs-dingtalk-access-" stays as is)
    (re.compile(r"(?i)((?:secret|token|password|passwd|api_?key|credential)[a-z0-9_-]*"
                r"[\"']?\s*[:=]\s*)([\"']?)(?!\*\*\*)[^\s\"',&}\]]+"), r"\1\2" + MARK),
    # OpenAI-style keys wherever they stand
    (re.compile(r"\bsk-[A-Za-z0-9_-]{12,}"), MARK),
)
# Secret values known to this process (at least this long: short ones would hit ordinary words).
_MIN_KNOWN = 8
_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()
# Environment variables whose values are secrets (and URLs whose passwords are).
SECRET_ENV = ("DINGTALK_CLIENT_SECRET", "LLM_API_KEY", "DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEY",
              "FIELD_ENCRYPTION_KEYS", "AUDIT_HMAC_KEY", "METRICS_TOKEN", "AUDIT_ARCHIVE_SECRET_KEY",
              "FLOWER_BASIC_AUTH")


def remember(*values: str) -> None:
    """Redact these exact values from now on (secrets decrypted at run time: remote-skill tokens, keys)."""
    global _known_pattern
    fresh = {v for value in values if value for v in value.split(",") if len(v.strip()) >= _MIN_KNOWN}
    fresh = {v.strip() for v in fresh}
    with _lock:
        if fresh <= _known:
            return
        _known.update(fresh)
        _known_pattern = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def redact(text: str) -> str:
    """`text` without secrets and with personal data replaced by its class."""
    if not text:
        return text
    known = _known_pattern
    if known is not None:
        text = known.sub(MARK, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return masking.redact(text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, traceback and stack redacted (idempotent)."""
    if getattr(record, "_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format: leave it to the handler's own error report
        return record
    clean = redact(message)
    if clean != message or record.args:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._redacted = True
    return record


class RedactingFilter(logging.Filter):
    """A handler or logger filter that redacts each record passing it."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed = False


def install() -> None:
    """Redact every record of every logger in this process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    remember(*(os.environ.get(name, "") for name in SECRET_ENV))
    for name in ("DATABASE_URL", "DATABASE_OWNER_URL", "CELERY_BROKER_URL", "REDIS_URL", "VECTOR_DATABASE_URL"):
        password = _url_password(os.environ.get(name, ""))
        if password:
            remember(password)


def _url_password(url: str) -> str:
    match = re.match(r"^[a-z][a-z0-9+.-]*://[^/:@]*:([^@/]+)@", url, flags=re.I)
    return match.group(1) if match else ""
