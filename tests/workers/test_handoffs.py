"""What the workers publish is confirmed or the stage stays un-acked; dead letters wait in the broker
for their store; a message that keeps killing its worker is dead-lettered after WORKER_DELIVERY_LIMIT."""

from __future__ import annotations

from typing import Any

import pytest
from celery import states
from celery.exceptions import Reject
from django.db import OperationalError

from contract.pipeline import RUN_SKILL, Stage
from webapp.actions import deadletters
from webapp.models import DeadLetter, MessageRecord, MessageStatus
from workers import tasks
from workers.celery import app
from workers.errors import PoisonMessage
from workers.payload import Order
from workers.pipeline import signature
from workers.state import ordering
from workers.tasks import PARKED, hand_on, pipeline_task

pytestmark = pytest.mark.django_db

POISONED = Stage("poisoned", "dtbot.test.poisoned", "dtbot.preprocess", 10)


@pipeline_task(POISONED, load=dict)
def poisoned_task(task, payload: dict) -> dict:
    raise PoisonMessage("cannot parse")


class _StoreDown:
    """do_dead_letter as it behaves while PostgreSQL is unreachable, for the first `times` calls."""

    def __init__(self, times: int) -> None:
        self.left, self.calls = times, 0

    def __call__(self, *args: Any, **kwargs: Any):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise OperationalError("could not connect to server: Connection refused")
        return deadletters.do_dead_letter(*args, **kwargs)


def test_a_dead_letter_the_store_cannot_take_waits_in_the_broker_and_is_written_when_it_returns(
        worker_settings, monkeypatch):
    MessageRecord.objects.create(msg_id="dl1", tenant_id="t")
    store = _StoreDown(times=3)
    monkeypatch.setattr(tasks, "do_dead_letter", store)
    result = poisoned_task.apply(args=({"msg_id": "dl1", "x": 1},))
    # Not acked away: each failed write published the message again (marked), the 4th run wrote it.
    assert result.state == states.IGNORED
    assert store.calls == 4
    letter = DeadLetter.objects.get(msg_id="dl1")
    assert letter.error == "poison: cannot parse" and letter.stage == "poisoned"
    assert letter.payload == {"msg_id": "dl1", "x": 1}  # the stage's input, without the parking mark
    assert MessageRecord.objects.get(msg_id="dl1").status == MessageStatus.DEAD


def test_a_parked_envelope_is_dead_lettered_as_the_envelope_it_was(worker_settings):
    from testkit.envelopes import envelope
    from workers.tasks import load_envelope, preprocess_task

    env = envelope(text="hi")
    parked = {**env, PARKED: {"stage": "preprocess", "error": "gave up after 5 retries: OperationalError"}}
    assert load_envelope(parked) == env  # still a valid envelope (and replays as one)
    assert preprocess_task.apply(args=(parked,)).state == states.IGNORED
    letter = DeadLetter.objects.get(msg_id=env["msg_id"])
    assert letter.payload == env and letter.error.startswith("gave up after 5 retries")


def test_a_dead_letter_frees_its_line_even_when_redis_fails_there(worker_settings, resources):
    order, _ = ordering.register("ahead", "t", "cid-dl", 1.0)
    ordering.register("behind", "t", "cid-dl", 2.0)
    data = {"msg_id": "ahead", "order": order.to_dict()}
    assert poisoned_task.apply(args=(data,)).state == states.IGNORED
    assert ordering.ahead_of("behind", Order("t", "cid-dl", 2.0)) == (0, 0)  # the slot is free
    # Redis gone when the slot is to be freed: the dead letter is still written.
    from testkit.services import free_port

    resources.set(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert poisoned_task.apply(args=({"msg_id": "other", "order": order.to_dict()},)).state == states.IGNORED
    assert DeadLetter.objects.filter(msg_id="other").exists()


def test_a_preprocess_dead_letter_frees_the_line_its_envelope_registered_in(worker_settings, monkeypatch):
    from testkit.envelopes import envelope
    from workers.stages import preprocess as stage
    from workers.tasks import preprocess_task

    env = envelope(text="hi")
    order = Order(env["tenant_id"], env["conversation_id"], 0.0)

    def broken_profile(*args, **kwargs):
        raise PoisonMessage("profile broken")  # after the envelope put itself in line

    monkeypatch.setattr(stage, "do_upsert_profile", broken_profile)
    assert preprocess_task.apply(args=(env,)).state == states.IGNORED
    assert DeadLetter.objects.get(msg_id=env["msg_id"]).error == "poison: profile broken"
    ordering.register("later", env["tenant_id"], env["conversation_id"], 9e15)
    assert ordering.ahead_of("later", order.replace(seq=9e15)) == (0, 0)


def test_only_redeliveries_are_counted_per_task_message_and_a_finished_run_clears_its_count(worker_settings):
    from workers.tasks import count_delivery, forget_deliveries

    task = app.tasks[RUN_SKILL.task]
    res = tasks.current()
    task.push_request(id="first-1", retries=0, delivery_info={"redelivered": False})
    try:
        assert count_delivery(task) == 0  # a first delivery costs no Redis call
        assert res.redis.get(res.key("deliveries:first-1:0")) is None
    finally:
        task.pop_request()
    task.push_request(id="killer-1", retries=2, delivery_info={"redelivered": True})
    try:
        assert [count_delivery(task) for _ in range(3)] == [1, 2, 3]  # three runs that never finished
        forget_deliveries(task)  # a run that ended in Python
        assert count_delivery(task) == 1
    finally:
        task.pop_request()


def test_a_message_that_killed_its_worker_too_often_is_dead_lettered_without_running(worker_settings, monkeypatch):
    from workers.tasks import run_skill_task

    ran: list[str] = []
    monkeypatch.setattr(tasks.run_skill, "run_skill", lambda payload: ran.append(payload.msg_id))
    monkeypatch.setattr(tasks, "count_delivery", lambda task: worker_settings.worker_delivery_limit)
    payload = {"msg_id": "killer", "turn": {"msg_id": "killer", "text": "boom"}}
    assert run_skill_task.apply(args=(payload,)).state == states.IGNORED
    assert ran == []
    letter = DeadLetter.objects.get(msg_id="killer")
    assert letter.error.startswith("poison: its worker died during") and "WORKER_DELIVERY_LIMIT" in letter.error


def _push(task, chain: list[dict]) -> None:
    task.push_request(id="parent-1", root_id="root-1", chain=chain, is_eager=False)


def test_a_stage_hands_on_its_result_itself_and_celery_does_not_publish_it_again(broker_queues, worker_settings):
    task = app.tasks[RUN_SKILL.task]
    result = {"msg_id": "h1", "turn": {"msg_id": "h1"}}
    _push(task, [dict(signature(RUN_SKILL))])
    try:
        hand_on(task, result)
        assert task.request.chain is None
    finally:
        task.pop_request()
    [message] = broker_queues()
    assert (message["queue"], message["args"]) == (RUN_SKILL.queue, [result])


def test_an_unroutable_hand_off_raises_instead_of_being_confirmed_away(broker_queues, resources):
    resources.set(TASK_RETRY_BACKOFF_SECONDS="0.01")
    task = app.tasks[RUN_SKILL.task]
    nowhere = signature(RUN_SKILL).set(exchange="dtbot", routing_key="dtbot.nowhere")
    chain = [dict(nowhere)]
    _push(task, chain)
    try:
        with pytest.raises(Reject) as rejected:
            hand_on(task, {"msg_id": "h2"})
        assert rejected.value.requeue  # the running stage goes back to its queue, it is not acked
        assert task.request.chain == chain  # not handed on: Celery's own dispatch is not skipped
    finally:
        task.pop_request()
    assert broker_queues() == []


def test_a_retry_the_broker_does_not_take_goes_back_to_its_queue(worker_settings, resources, monkeypatch):
    from kombu.exceptions import OperationalError as BrokerDown

    resources.set(TASK_RETRY_BACKOFF_SECONDS="0.01")
    task = app.tasks[RUN_SKILL.task]

    def refused(*args, **kwargs):
        raise Reject(BrokerDown("connection refused"), requeue=False)  # what Celery's retry raises then

    monkeypatch.setattr(task, "retry", refused)
    with pytest.raises(Reject) as rejected:
        tasks.publish_again(task, countdown=1)
    assert rejected.value.requeue


def test_only_the_stage_publishes_wait_for_confirms_never_the_event_dispatcher(broker_queues):
    from workers.confirms import confirmed_producer

    # Task events and heartbeats: one channel shared by every pool thread, so never in confirm mode.
    dispatcher = app.events.Dispatcher(app.connection_for_write(), enabled=True)
    try:
        assert dispatcher.producer.channel.connection.confirm_publish is False
    finally:
        dispatcher.close()
    with confirmed_producer(app) as producer:
        assert producer is not None
        assert producer.channel.connection.confirm_publish is True


def test_concurrent_hand_offs_each_hold_their_own_confirm_mode_channel(broker_queues):
    import threading

    from workers.confirms import confirmed_producer

    held: list[int] = []
    barrier = threading.Barrier(4)

    def hold() -> None:
        with confirmed_producer(app) as producer:
            assert producer is not None
            held.append(id(producer.channel))
            barrier.wait(timeout=10)  # all four at once

    threads = [threading.Thread(target=hold) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(set(held)) == 4  # no two threads share a channel

    task = app.tasks[RUN_SKILL.task]
    errors: list[BaseException] = []

    def hand(n: int) -> None:
        _push(task, [dict(signature(RUN_SKILL))])
        try:
            hand_on(task, {"msg_id": f"c{n}"})
        except BaseException as exc:
            errors.append(exc)
        finally:
            task.pop_request()

    threads = [threading.Thread(target=hand, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(m["args"][0]["msg_id"] for m in broker_queues()) == sorted(f"c{n}" for n in range(12))


def test_a_failed_confirmed_publish_drops_its_connection(broker_queues):
    from workers.confirms import confirmed_producer

    with pytest.raises(RuntimeError), confirmed_producer(app) as producer:
        assert producer is not None
        producer.connection.connect()
        raise RuntimeError("the publish failed")
    assert producer.connection._connection is None  # a late confirm can never be read as the next one's
