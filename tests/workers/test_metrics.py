"""workers.metrics without a worker: queue waits and processing times read from the payload's stamps,
bounded labels, and the exporter's view of this process's registry."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from conf.settings import load
from testkit.services import free_port
from workers import metrics
from workers.dingtalk.api import _family


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def payload(received: float = 100.0, **stages: dict) -> dict:
    return {"turn": {"msg_id": "m1", "skill": "echo", "received_at": received},
            "record": {"timeline": {"stages": stages}}}


def test_queue_wait_runs_from_the_previous_stage_end_or_the_receipt():
    data = payload(preprocess={"first": 100.5, "start": 100.5, "end": 101.0},
                   run_skill={"first": 101.25, "start": 103.0})
    assert metrics.queue_wait("run_skill", data, started=103.0) == pytest.approx(0.25)  # a retry keeps `first`
    assert metrics.queue_wait("preprocess", {"received_at": 99.0}, started=100.5) == pytest.approx(1.5)
    assert metrics.queue_wait("postprocess", data, started=104.0) is None  # run_skill has no end yet
    assert metrics.queue_wait("preprocess", {"msg_id": "x"}, started=1.0) is None


def test_processing_time_ends_at_the_reply_or_an_ai_cards_first_token():
    data = payload(received=100.0, run_skill={"start": 100.4})
    assert metrics.processing_seconds(data, "webhook", now=101.5) == pytest.approx(1.5)
    data["record"]["timeline"]["llm"] = {"first_token_s": 0.35, "total_s": 4.0}
    assert metrics.processing_seconds(data, "card", now=110.0) == pytest.approx(0.75)
    assert metrics.processing_seconds({"turn": {}}, "webhook", now=1.0) is None


def test_a_delivered_reply_is_counted_with_its_skill_and_channel():
    before = sample("ai_processing_seconds_count", skill="echo", channel="openapi")
    replied = sample("dtbot_messages_total", outcome="replied")
    metrics.stage_done("deliver", 101.0, payload(received=100.0),
                       {"result": "sent", "channel": "openapi"}, now=101.8)
    assert sample("ai_processing_seconds_count", skill="echo", channel="openapi") == before + 1
    assert sample("dtbot_messages_total", outcome="replied") == replied + 1
    unknown = sample("dtbot_messages_total", outcome="delivery_unknown")
    metrics.stage_done("deliver", 101.0, payload(), {"result": "delivery_unknown"}, now=101.8)
    assert sample("dtbot_messages_total", outcome="delivery_unknown") == unknown + 1


def test_run_skill_counts_the_outcome_and_the_llm_timings():
    result = payload()
    result["outcome"] = "timeout"
    result["record"]["timeline"]["llm"] = {"first_token_s": 0.2, "total_s": 1.0, "chunks": 7}
    timeouts = sample("dtbot_skill_runs_total", skill="echo", outcome="timeout")
    tokens = sample("dtbot_llm_tokens_total", direction="out")
    metrics.stage_done("run_skill", 10.0, payload(), result, now=11.0)
    assert sample("dtbot_skill_runs_total", skill="echo", outcome="timeout") == timeouts + 1
    assert sample("dtbot_llm_tokens_total", direction="out") == tokens + 7


def test_the_llm_servers_own_token_counts_win_over_the_chunk_count():
    result = payload()
    result["record"]["timeline"]["llm"] = {"first_token_s": 0.2, "total_s": 1.0, "chunks": 7,
                                           "tokens_in": 120, "tokens_out": 9}
    before = {d: sample("dtbot_llm_tokens_total", direction=d) for d in ("in", "out")}
    metrics.stage_done("run_skill", 10.0, payload(), result, now=11.0)
    assert sample("dtbot_llm_tokens_total", direction="in") == before["in"] + 120
    assert sample("dtbot_llm_tokens_total", direction="out") == before["out"] + 9


def test_labels_stay_bounded():
    metrics.count_message("whatever")
    assert sample("dtbot_messages_total", outcome="other") >= 1
    names = [metrics.skill_label(f"remote-{i}") for i in range(metrics.MAX_SKILL_LABELS + 5)]
    assert names[-1] == "other"
    assert _family("https://oapi.dingtalk.com/robot/sendBySession?session=secret") == "webhook"
    assert _family("https://api.dingtalk.com/v1.0/robot/oToMessages/batchSend") == "robot_send"
    assert _family("https://api.dingtalk.com/v1.0/oauth2/accessToken") == "token"


def test_the_exporter_serves_this_process_registry_and_its_cpu():
    metrics.count_message("busy_notice")
    text = generate_latest(metrics.exporter_registry()).decode()
    assert 'dtbot_messages_total{outcome="busy_notice"}' in text
    assert "process_cpu_seconds_total" in text
    assert text.count("\nprocess_cpu_seconds_total ") == 1  # the default one is replaced, not doubled


def test_a_taken_or_zero_port_leaves_the_worker_running_without_metrics():
    assert metrics.start_exporter(load({"WORKER_METRICS_PORT": "0"})) == 0
    with socket.socket() as sock:
        sock.bind(("", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert metrics.start_exporter(load({"WORKER_METRICS_PORT": str(taken)})) == 0


def test_queue_depths_are_the_brokers_counts_and_an_outage_is_reported_not_raised(broker_queues):
    from kombu import Connection

    from workers.celery import app
    from workers.pipeline import build_chain

    for n in range(3):
        build_chain({"msg_id": f"depth-{n}", "tenant_id": "t"}).apply_async()  # nobody consumes here
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.QueueDepthCollector(app))
    assert registry.get_sample_value("dtbot_queue_messages", {"queue": "dtbot.preprocess"}) == 3
    assert registry.get_sample_value("dtbot_queue_messages", {"queue": "dtbot.deliver"}) == 0
    assert registry.get_sample_value("dtbot_queue_depth_up") == 1
    assert len(broker_queues()) == 3

    class BrokerDown:
        def connection_for_read(self) -> Connection:
            return Connection(f"amqp://guest:guest@127.0.0.1:{free_port()}//", connect_timeout=1)

    down = CollectorRegistry(auto_describe=False)
    down.register(metrics.QueueDepthCollector(BrokerDown()))
    assert down.get_sample_value("dtbot_queue_depth_up") == 0
    assert down.get_sample_value("dtbot_queue_messages", {"queue": "dtbot.preprocess"}) is None
