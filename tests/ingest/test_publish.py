"""The broker side: envelopes become persistent, confirmed Celery task messages of the pipeline."""

from __future__ import annotations

import json
import time

import kombu
import pytest
from celery.canvas import Signature

from ingest.publish import BrokerPublisher, BrokerUnavailable, PipelineMessages, UnencodableEnvelope
from testkit.services import free_port
from testkit.tcpproxy import tcp_proxy
from tests.ingest.conftest import drain_queue, envelope


def _assert_pipeline_message(msg: kombu.Message, env: dict) -> None:
    assert msg.headers["task"] == "dtbot.pipeline.preprocess"
    assert msg.headers["id"] and msg.headers["root_id"] == msg.headers["id"]
    assert msg.content_type == "application/json"
    args, kwargs, embed = json.loads(msg.body)
    assert args == [env] and kwargs == {}
    chain = [Signature.from_dict(s) for s in embed["chain"]]
    # The chain field lists the remaining stages last-first; workers pop from the end.
    assert [s.task for s in chain] == [
        "dtbot.pipeline.deliver",
        "dtbot.pipeline.postprocess",
        "dtbot.pipeline.run_skill",
    ]
    assert [s.options["queue"] for s in chain] == ["dtbot.deliver", "dtbot.postprocess", "dtbot.skills"]


def test_a_confirmed_batch_lands_as_persistent_pipeline_messages_on_rabbitmq(rabbit_broker):
    envs = [envelope(f"msg-{i}", text=f"hi {i}").to_dict() for i in range(25)]
    publisher = BrokerPublisher(rabbit_broker)
    publisher.connect()
    try:
        assert publisher.publish_batch(envs) == [True] * 25
    finally:
        publisher.close()
    messages = drain_queue(rabbit_broker)
    assert len(messages) == 25
    for msg, env in zip(messages, envs, strict=True):
        assert msg.properties["delivery_mode"] == 2
        _assert_pipeline_message(msg, env)


def test_the_preprocess_queue_is_declared_durable(rabbit_broker):
    publisher = BrokerPublisher(rabbit_broker)
    publisher.connect()
    publisher.close()
    with kombu.Connection(rabbit_broker) as conn:
        # A passive declare with a different durability would fail; durable=True matches.
        name, _count, _ = conn.channel().queue_declare("dtbot.preprocess", passive=True)
        assert name == "dtbot.preprocess"
        conn.channel().queue_declare("dtbot.preprocess", durable=True, auto_delete=False)


def test_delivery_tags_keep_counting_across_batches_on_one_channel(rabbit_broker):
    publisher = BrokerPublisher(rabbit_broker)
    publisher.connect()
    try:
        for batch in range(4):
            envs = [envelope(f"b{batch}-{i}").to_dict() for i in range(50)]
            assert all(publisher.publish_batch(envs))
        assert publisher._next_tag == 201
    finally:
        publisher.close()
    assert len(drain_queue(rabbit_broker)) == 200


def _published_by_celery(url: str, messages: PipelineMessages, env: dict, task_id: str) -> None:
    """The same envelope sent the long way by the workers' own app: as_task_v2 + send_task_message."""
    from workers.celery import app

    message = app.amqp.as_task_v2(
        task_id, messages.task_name, args=(env,), kwargs={}, chain=messages.rest, origin=messages.origin,
        argsrepr=f"(<envelope msg_id={env['msg_id']!r}>,)", kwargsrepr="{}",
    )
    with kombu.Connection(url) as conn:
        producer = kombu.Producer(conn.channel(), auto_declare=False)
        app.amqp.send_task_message(
            producer, messages.task_name, message, queue=messages.queue_name, retry=False, declare=[]
        )


def _wire_view(msg: kombu.Message) -> dict:
    """What a worker reads of a task message, without the fields that carry the task id."""
    headers = {k: v for k, v in msg.headers.items() if k not in ("id", "root_id")}
    keep = ("delivery_mode", "priority", "reply_to")
    props = {k: msg.properties.get(k) for k in keep}
    info = {k: msg.delivery_info.get(k) for k in ("exchange", "routing_key")}
    return {"headers": headers, "properties": props, "delivery_info": info, "content_type": msg.content_type,
            "content_encoding": msg.content_encoding, "body": msg.decode()}


@pytest.mark.integration  # the broker fixture is looked up by name
@pytest.mark.parametrize("broker", ["rabbit_broker", "redis_broker"])
def test_the_prebuilt_message_is_what_celery_itself_would_publish(broker, request):
    url = request.getfixturevalue(broker)
    messages = PipelineMessages()
    env = envelope("same", text="中文 and \"quotes\"").to_dict()
    _published_by_celery(url, messages, env, "celery-built-id")
    publisher = BrokerPublisher(url, messages=messages)
    publisher.connect()
    try:
        assert publisher.publish_batch([env]) == [True]
    finally:
        publisher.close()
    by_celery, ours = drain_queue(url)
    assert by_celery.headers["id"] == "celery-built-id"
    assert ours.headers["id"] == ours.headers["root_id"] == ours.properties["correlation_id"] != "celery-built-id"
    assert _wire_view(ours) == _wire_view(by_celery)


@pytest.mark.parametrize("msg_id", ["m-1", "", "中文" * 100, "x" * 300, "quote'\"\\"])
def test_prebuilt_amqp_properties_are_byte_for_byte_what_py_amqp_writes(msg_id):
    import amqp

    messages = PipelineMessages()
    assert messages._amqp_properties is not None  # the fast path is in use
    task = messages.encode(envelope("m").to_dict() | {"msg_id": msg_id})
    ours = messages.amqp_message(task)
    theirs = amqp.Message(task.body, **messages.amqp_properties(task))
    assert ours._serialize_properties() == theirs._serialize_properties()
    assert ours.body == theirs.body


def test_several_batches_are_in_flight_at_once_and_settle_in_order(rabbit_broker):
    publisher = BrokerPublisher(rabbit_broker)
    publisher.connect()
    sizes = [5, 1, 7]
    outcomes: list[list[bool]] = []
    try:
        for n, size in enumerate(sizes):
            publisher.send([envelope(f"f{n}-{i}").to_dict() for i in range(size)])
        assert publisher.in_flight == 3  # nothing waited for a confirm yet
        deadline = time.monotonic() + 10
        while len(outcomes) < 3 and time.monotonic() < deadline:
            outcomes += publisher.poll(0.05)
        assert publisher.in_flight == 0
    finally:
        publisher.close()
    assert outcomes == [[True] * size for size in sizes]
    ids = [json.loads(m.body)[0][0]["msg_id"] for m in drain_queue(rabbit_broker)]
    assert ids == [f"f{n}-{i}" for n, size in enumerate(sizes) for i in range(size)]


def test_a_cut_connection_loses_every_batch_in_flight(rabbit_broker):
    with tcp_proxy() as proxy:
        publisher = BrokerPublisher(proxy.url_for(rabbit_broker), confirm_timeout=2)
        publisher.connect()
        publisher.send([envelope("lost-1").to_dict()])
        publisher.send([envelope("lost-2").to_dict()])
        proxy.cut()
        sent, reported = 2, 0
        with pytest.raises(BrokerUnavailable):
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                # Confirms read before the failure shows count as reported; the rest is lost.
                reported += len(publisher.poll(0.05))
                publisher.send([envelope("more").to_dict()])
                sent += 1
        assert reported < sent
        assert publisher.in_flight == 0 and not publisher.connected


def test_an_envelope_json_cannot_hold_is_reported_before_anything_is_written(rabbit_broker):
    publisher = BrokerPublisher(rabbit_broker)
    publisher.connect()
    bad = envelope("bad").to_dict()
    bad["payload"] = {"x": object()}
    try:
        with pytest.raises(UnencodableEnvelope) as caught:
            publisher.send([envelope("ok-0").to_dict(), bad, envelope("ok-1").to_dict()])
        assert caught.value.index == 1
        assert publisher.connected and publisher.in_flight == 0
        assert publisher.publish_batch([envelope("ok-2").to_dict()]) == [True]
    finally:
        publisher.close()
    assert [json.loads(m.body)[0][0]["msg_id"] for m in drain_queue(rabbit_broker)] == ["ok-2"]


def test_a_broker_ack_with_multiple_settles_every_earlier_tag():
    publisher = BrokerPublisher("amqp://unused")
    publisher._pending = {1, 2, 3, 4, 5}
    publisher._on_ack(3, True)
    assert publisher._pending == {4, 5}
    publisher._on_nack(5, False)
    assert publisher._pending == {4} and publisher._nacked == {5}


def test_a_redis_broker_gets_the_same_pipeline_messages(redis_broker):
    envs = [envelope(f"r-{i}").to_dict() for i in range(10)]
    publisher = BrokerPublisher(redis_broker)
    publisher.connect()
    try:
        assert publisher.publish_batch(envs) == [True] * 10
    finally:
        publisher.close()
    messages = drain_queue(redis_broker)
    assert len(messages) == 10
    for msg, env in zip(messages, envs, strict=True):
        _assert_pipeline_message(msg, env)


def test_connecting_to_a_dead_broker_raises_broker_unavailable():
    publisher = BrokerPublisher(f"amqp://guest:guest@127.0.0.1:{free_port()}//", connect_timeout=1)
    with pytest.raises(BrokerUnavailable):
        publisher.connect()
    assert not publisher.connected


def test_a_connection_cut_mid_flight_raises_and_nothing_is_reported_durable(rabbit_broker):
    with tcp_proxy() as proxy:
        publisher = BrokerPublisher(proxy.url_for(rabbit_broker), confirm_timeout=2)
        publisher.connect()
        assert publisher.publish_batch([envelope("before").to_dict()]) == [True]
        proxy.cut()
        with pytest.raises(BrokerUnavailable):
            publisher.publish_batch([envelope("during").to_dict()])
        assert not publisher.connected
        proxy.restore()
        publisher.connect()
        assert publisher.publish_batch([envelope("after").to_dict()]) == [True]
        publisher.close()
    bodies = [json.loads(m.body)[0][0]["msg_id"] for m in drain_queue(rabbit_broker)]
    assert "before" in bodies and "after" in bodies


def test_the_chain_shape_comes_from_build_chain():
    messages = PipelineMessages()
    assert messages.task_name == "dtbot.pipeline.preprocess"
    assert messages.queue_name == "dtbot.preprocess"
    assert [s["task"] for s in messages.rest or []][-1] == "dtbot.pipeline.run_skill"


@pytest.mark.slow
def test_an_idle_connection_survives_on_heartbeats(rabbit_broker):
    publisher = BrokerPublisher(rabbit_broker, heartbeat=1)
    publisher.connect()
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            publisher.heartbeat()  # what the hand-off does every 0.5 s when idle
            time.sleep(0.3)
        assert publisher.connected
        assert publisher.publish_batch([envelope("after-idle").to_dict()]) == [True]
    finally:
        publisher.close()
    drain_queue(rabbit_broker)


def test_an_idle_redis_connection_needs_no_heartbeat(redis_broker):
    publisher = BrokerPublisher(redis_broker)
    publisher.connect()
    publisher.heartbeat()
    assert publisher.publish_batch([envelope("r").to_dict()]) == [True]
    publisher.close()


@pytest.mark.slow
def test_a_real_celery_worker_runs_the_published_message_through_all_four_stages(rabbit_broker, redis_prefix):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import redis

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(CELERY_BROKER_URL=rabbit_broker, PROBE_PREFIX=redis_prefix)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.ingest.pipeline_probe", "worker", "-P", "solo",
         "-Q", "dtbot.preprocess,dtbot.skills,dtbot.postprocess,dtbot.deliver", "--without-gossip",
         "--without-mingle", "-l", "WARNING"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    publisher = BrokerPublisher(rabbit_broker)
    try:
        publisher.connect()
        assert publisher.publish_batch([envelope("through").to_dict()]) == [True]
        deadline = time.monotonic() + 30
        while client.llen(f"{redis_prefix}through") < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        stages = [s.decode() for s in client.lrange(f"{redis_prefix}through", 0, -1)]
    finally:
        publisher.close()
        worker.terminate()
        worker.wait(20)
        client.close()
    assert stages == ["preprocess", "run_skill", "postprocess", "deliver"]
