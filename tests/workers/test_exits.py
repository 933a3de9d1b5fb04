"""The exit table: every error kind of a stage has its one exit (tested without Celery)."""

from __future__ import annotations

import logging

import pytest
import redis
from django.db import OperationalError

from contract.pipeline import DELIVER, PREPROCESS, RUN_SKILL
from workers.errors import (
    DeliveryUnknown,
    DuplicateMessage,
    NothingToAnswer,
    PoisonMessage,
    Throttled,
    TransientError,
    WaitForTurn,
)
from workers.exits import MAX_THROTTLED_REQUEUES, Attempt, ExitKind, RetryPolicy, exit_for
from workers.payload import Order

POLICY = RetryPolicy(max_retries=5, backoff_seconds=1.0, backoff_max_seconds=60.0)
PAYLOAD = {"msg_id": "m1", "turn": {"msg_id": "m1", "skill": "echo"}, "order": None}


def attempt(stage=DELIVER, retries: int = 0, **data) -> Attempt:
    return Attempt(stage, {**PAYLOAD, **data}, retries, POLICY)


@pytest.mark.parametrize("exc", [DuplicateMessage("claimed by run r0"), NothingToAnswer("no handler")])
def test_a_duplicate_or_nothing_to_answer_stops_quietly(exc):
    exit = exit_for(exc, attempt(PREPROCESS))
    assert exit.kind is ExitKind.STOP and exit.log_level == logging.INFO


def test_waiting_for_the_turn_requeues_with_the_new_order_and_is_not_a_failure():
    order = Order("t", "cid", 5.0, registered_at=1.0, waiting_since=2.0)
    exit = exit_for(WaitForTurn(order, 0.4, ahead=2), attempt(retries=3, requeued={"deliver": 3}))
    assert (exit.kind, exit.countdown) == (ExitKind.REQUEUE, 0.4) and exit.args is not None
    assert exit.args["order"] == order.to_dict() and exit.args["requeued"] == {"deliver": 4}
    assert exit.args["msg_id"] == "m1"


def test_throttling_requeues_with_a_count_and_a_backoff_that_honours_retry_after():
    exit = exit_for(Throttled("QpsLimitForApi", retry_after=7.0), attempt(throttled=2))
    assert exit.kind is ExitKind.REQUEUE and exit.args is not None and exit.args["throttled"] == 3
    assert exit.args["requeued"] == {"deliver": 1} and 7.0 <= exit.countdown <= POLICY.backoff_max_seconds


def test_throttling_without_end_is_dead_lettered():
    exit = exit_for(Throttled("still too fast"), attempt(throttled=MAX_THROTTLED_REQUEUES))
    assert exit.kind is ExitKind.DEAD_LETTER and "still throttled after" in exit.reason


@pytest.mark.parametrize("exc", [
    TransientError("HTTP 503"), redis.ConnectionError("refused"), redis.TimeoutError("slow"),
    OperationalError("server closed the connection"),
])
def test_transient_errors_and_store_outages_are_retried_with_backoff(exc):
    exit = exit_for(exc, attempt(retries=2))
    assert exit.kind is ExitKind.RETRY and 2.0 <= exit.countdown <= 4.0  # 1 s × 2², jitter to half
    assert exit.log_level == logging.WARNING and "retry 3" in exit.log_message


def test_requeues_do_not_count_against_the_retries():
    # Nine retries so far, but seven were turnstile waits: the stage failed only twice.
    assert exit_for(TransientError("blip"), attempt(retries=9, requeued={"deliver": 7})).kind is ExitKind.RETRY
    # ...and a re-queue of another stage does not count for this one.
    last = exit_for(TransientError("blip"), attempt(retries=5, requeued={"run_skill": 4}))
    assert last.kind is ExitKind.DEAD_LETTER and last.reason.startswith("gave up after 5 retries: TransientError")


def test_a_poison_message_is_dead_lettered_with_its_reason():
    exit = exit_for(PoisonMessage("invalid staff id"), attempt())
    assert (exit.kind, exit.reason) == (ExitKind.DEAD_LETTER, "poison: invalid staff id")


def test_an_unknown_delivery_outcome_is_no_retry():
    # deliver handles it itself (records delivery_unknown); escaping, it is a pipeline error, not transient
    exit = exit_for(DeliveryUnknown("read timeout"), attempt())
    assert exit.kind is ExitKind.DEAD_LETTER


def test_a_crash_in_run_skill_becomes_the_apology_and_elsewhere_a_dead_letter_with_its_traceback():
    crash = exit_for(ZeroDivisionError("bug in a skill"), attempt(RUN_SKILL))
    assert (crash.kind, crash.reason, crash.traceback) == (ExitKind.APOLOGY, "crash", True)
    assert "skill=echo" in crash.log_message
    elsewhere = exit_for(KeyError("oops"), attempt(DELIVER))
    assert (elsewhere.kind, elsewhere.reason) == (ExitKind.DEAD_LETTER, "KeyError: 'oops'")
    assert elsewhere.traceback and elsewhere.log_level == logging.ERROR


def test_backoff_grows_with_jitter_up_to_the_cap():
    low = RetryPolicy(5, 1.0, 60.0).countdown(0, uniform=lambda a, b: a)
    high = RetryPolicy(5, 1.0, 60.0).countdown(0, uniform=lambda a, b: b)
    assert (low, high) == (0.5, 1.0)
    assert RetryPolicy(5, 1.0, 60.0).countdown(30, uniform=lambda a, b: b) == 60.0
    assert RetryPolicy(5, 1.0, 60.0).countdown(0, retry_after=600, uniform=lambda a, b: b) == 60.0
