"""The log redaction: secrets, webhook URLs, Authorization headers and personal data never reach a log line."""

from __future__ import annotations

import io
import logging

import pytest

from conf import redaction
from conf.logs import LOG_FORMAT, MessageContextFilter
from conf.redaction import redact


@pytest.mark.parametrize(("text", "gone", "kept"), [
    ("POST https://oapi.dingtalk.com/robot/sendBySession?session=c8f0a1b2c3d4e5f6 200",
     "c8f0a1b2c3d4e5f6", "sendBySession?session=***"),
    ("headers={'Authorization': 'Bearer eyJhbGciOi.J9xyz', 'Accept': 'json'}", "eyJhbGciOi.J9xyz", "'Accept'"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "Authorization: ***"),
    ('{"appKey": "ding123", "appSecret": "Zx9-secret-value"}', "Zx9-secret-value", '"appKey": "ding123"'),
    ("x-acs-dingtalk-access-token: 8a7b6c5d4e3f2a1b", "8a7b6c5d4e3f2a1b", "x-acs-dingtalk-access-token"),
    ("GET /gettoken?appkey=k&access_token=abcdef123456", "abcdef123456", "access_token=***"),
    ("connect postgres://app:pw-77ab19@db:5432/x", "pw-77ab19", "postgres://app:***@db:5432/x"),
    ("llm key sk-proj-AbCdEfGhIjKlMn0123 rejected", "AbCdEfGhIjKlMn0123", "rejected"),
    ("api_key='k-42-very-secret'", "k-42-very-secret", "api_key="),
    ("用户 13812345678 发来 alice@example.com", "13812345678", "用户 [PHONE] 发来 [EMAIL]"),
])
def test_redact(text, gone, kept):
    out = redact(text)
    assert gone not in out and kept in out, out


def test_ordinary_text_is_left_alone():
    text = "msg_id=msg-1 stage=deliver replied in 0.25 s (3 parts, order 12812345678, max_tokens 1024)"
    assert redact(text) == text


def test_every_logger_is_redacted_with_arguments_tracebacks_and_remembered_values():
    redaction.remember("tok-remote-5b6c7d8e")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(MessageContextFilter())
    logger = logging.getLogger("some.library.nobody.configured")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling %s with %r", "https://x/robot/sendBySession?session=SeCrEt123",
                       {"token": "tok-remote-5b6c7d8e"})
        try:
            raise RuntimeError("remote said: token tok-remote-5b6c7d8e is wrong, phone 13912345678")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "SeCrEt123" not in out and "tok-remote-5b6c7d8e" not in out and "13912345678" not in out
    assert "RuntimeError" in out and "sendBySession?session=***" in out
