"""The shared rate budget across workers, and back-off when DingTalk still says "too fast": every reply once."""

from __future__ import annotations

import time

import pytest

from testkit import traffic
from testkit.ledger import Ledger
from testkit.stack import Stack

from .gateway_support import needs_listener, start_bot

pytestmark = [pytest.mark.slow, needs_listener]

LIMIT = 5  # DingTalk's (the sandbox's) webhook limit, calls per second
MESSAGES = 60


def run(client, n: int) -> tuple[Ledger, list[dict], float]:
    ledger = Ledger()
    started = time.monotonic()
    traffic.send(client, ledger, n, conversations=20)
    replies = traffic.wait_for_all(client, ledger, timeout=120)
    return ledger, replies, time.monotonic() - started


def test_workers_share_one_budget_and_stay_under_the_limit(stack: Stack):
    client = start_bot(stack, pipeline_workers=2, DINGTALK_QPS_WEBHOOK=str(LIMIT))
    client.configure(qps_limits={"webhook": LIMIT})
    ledger, replies, elapsed = run(client, MESSAGES)
    verdict = ledger.check(replies)
    assert verdict.exactly_once, verdict.summary()
    assert client.state()["throttled"] == 0  # two workers together never exceeded the limit
    assert elapsed >= (MESSAGES - LIMIT) / LIMIT * 0.9  # and the limit was what paced them
    print(f"\nbudget: {MESSAGES} replies at ≤{LIMIT}/s in {elapsed:.1f} s, 0 throttled")


def test_when_dingtalk_throttles_anyway_workers_back_off_and_nothing_is_lost_or_doubled(stack: Stack):
    # The budget is set too generous on purpose: DingTalk answers 130101 and the workers must cope.
    client = start_bot(stack, pipeline_workers=2, DINGTALK_QPS_WEBHOOK="100", DINGTALK_QPS_ROBOT_SEND="100")
    client.configure(qps_limits={"webhook": LIMIT, "robot_send": LIMIT})
    ledger, replies, elapsed = run(client, MESSAGES)
    verdict = ledger.check(replies)
    throttled = client.state()["throttled"]
    assert verdict.exactly_once, verdict.summary()
    assert throttled > 0, "the sandbox never throttled: the test did not test back-off"
    assert "dead-lettered" not in stack.logs("worker-pipeline")
    print(f"\nback-off: {MESSAGES} replies exactly once in {elapsed:.1f} s after {throttled} throttled calls")
