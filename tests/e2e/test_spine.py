"""One message travels socket → durable queue → Celery chain → exactly one reply, at volume."""

from __future__ import annotations

import pytest

from testkit import traffic
from testkit.ledger import Ledger
from testkit.stack import Stack
from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow


def _run_bot(bot: Stack) -> None:
    bot.start_sandbox(redeliver_after=30)
    bot.start_pipeline_worker(concurrency=8)
    bot.start_skills_worker(concurrency=2)
    bot.start_listener()
    sandbox_control(bot).wait_for_state(connections=1, timeout=30)


def _exactly_once(bot: Stack, n: int, timeout: float) -> None:
    client = sandbox_control(bot)
    ledger = Ledger()
    traffic.send(client, ledger, n, conversations=50)
    replies = traffic.wait_for_all(client, ledger, timeout=timeout)
    verdict = ledger.check(replies)
    assert verdict.exactly_once, verdict.summary()
    state = client.state()
    assert state["unacked"] == 0, state


def test_500_messages_get_exactly_500_replies_each_to_its_conversation(stack: Stack):
    _run_bot(stack)
    _exactly_once(stack, 500, timeout=120)


@pytest.mark.redis_broker
def test_the_redis_broker_also_answers_every_message_exactly_once(redis_stack: Stack):
    _run_bot(redis_stack)
    _exactly_once(redis_stack, 200, timeout=120)
