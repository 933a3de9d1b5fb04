"""conf/logs.py: text or JSON lines (LOG_FORMAT), each carrying msg_id, stage, conversation and tenant."""

from __future__ import annotations

import io
import json
import logging

import pytest

from conf.logs import configure_logging, is_ours, make_formatter, make_handler, message_context
from conf.settings import load


def _logger(stream: io.StringIO, kind: str) -> tuple[logging.Logger, logging.Handler]:
    handler = make_handler(stream, kind=kind)
    logger = logging.getLogger(f"test.logs.{kind}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    return logger, handler


def test_json_lines_carry_the_message_fields_inside_and_dashes_outside():
    stream = io.StringIO()
    logger, handler = _logger(stream, "json")
    try:
        with message_context("msgA==", "deliver", "cid42", "ding1"):
            logger.info("replied in %d part(s) to %s", 2, "小明")
        logger.warning("between messages")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["message"] == "replied in 2 part(s) to 小明"
    assert (inside["msg_id"], inside["stage"], inside["conversation"], inside["tenant"]) == (
        "msgA==", "deliver", "cid42", "ding1")
    assert (inside["level"], inside["logger"]) == ("INFO", "test.logs.json")
    assert {"time", "process", "thread"} <= set(inside)
    assert (outside["msg_id"], outside["stage"], outside["conversation"], outside["tenant"]) == ("-",) * 4
    assert "小明" in stream.getvalue()  # not \u escapes: readable in `docker compose logs`


def test_fields_given_by_extra_win_over_the_context_and_exceptions_are_kept():
    stream = io.StringIO()
    logger, handler = _logger(stream, "json")
    try:
        with message_context("outer==", "ingest"):
            logger.info("one envelope", extra={"msg_id": "inner==", "stage": "handoff"})
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["msg_id"], first["stage"]) == ("inner==", "handoff")
    assert second["msg_id"] == "outer==" and "ValueError: boom" in second["exc_info"]


def test_text_lines_keep_their_format():
    stream = io.StringIO()
    logger, handler = _logger(stream, "text")
    try:
        with message_context("msgT==", "preprocess"):
            logger.info("hello")
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue().strip()
    assert "msg_id=msgT== stage=preprocess hello" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_an_unknown_log_format_is_refused_by_name():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        load({"LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        make_formatter("xml")
    assert load({"LOG_FORMAT": " JSON "}).log_format == "json"


def test_configure_logging_installs_one_handler_of_ours():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    for handler in saved:
        root.removeHandler(handler)
    try:
        configure_logging("INFO")
        configure_logging("INFO")
        assert len([h for h in root.handlers if is_ours(h)]) == 1
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
