"""Worker metrics through real workers: each worker's main process exports what its pool processes
counted (prefork children included), queue depths from the broker, and its CPU and memory."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit import processes, services
from testkit.envelopes import envelope_from_push
from testkit.personas import alice, bob
from testkit.waits import wait_for
from tests.support.stack_fixtures import sandbox_worker_env
from workers.pipeline import build_chain

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PIPELINE_QUEUES = ("dtbot.preprocess", "dtbot.postprocess", "dtbot.deliver")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a worker's /metrics: (name, sorted labels) → value."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, lbl), v in samples.items()
               if n == name and all(dict(lbl).get(k) == want for k, want in labels.items()))


@pytest.fixture
def metered_workers(django_db_setup, celery_broker, dingtalk_sandbox, broker_queues, resources):
    with services.redis_namespace() as prefix:
        resources.set(REDIS_KEY_PREFIX=prefix)
        env = sandbox_worker_env(celery_broker, dingtalk_sandbox, prefix)
        ports = services.free_port(), services.free_port()
        pipeline = processes.start_worker(dict(env, WORKER_METRICS_PORT=str(ports[0])), PIPELINE_QUEUES,
                                          pool="threads", concurrency=2)
        try:
            skills = processes.start_worker(dict(env, WORKER_METRICS_PORT=str(ports[1])),
                                            ("dtbot.skills", "dtbot.skills.io"), pool="prefork", concurrency=2)
        except Exception:
            processes.stop(pipeline)
            raise
        yield ports
        processes.stop(skills)
        processes.stop(pipeline)


def test_each_worker_exports_its_pools_stage_timings_outcomes_and_queue_depths(
        dingtalk_sandbox, sandbox_client, metered_workers):
    pipeline_port, skills_port = metered_workers
    envelopes = [envelope_from_push(dingtalk_sandbox, who.send(sandbox_client, text)["messageId"])
                 for text, who in (("hello", alice), ("你好", bob), ("help", alice))]
    for envelope in envelopes:
        build_chain(envelope).apply_async()
    build_chain(dict(envelopes[0], message_id="re-push")).apply_async()  # the same msgId again
    sandbox_client.wait_for_replies(3, timeout=30)

    def pipeline_counted() -> dict | None:
        samples = scrape(pipeline_port)
        done = (total(samples, "dtbot_messages_total", outcome="replied") == 3
                and total(samples, "dtbot_messages_total", outcome="duplicate") == 1)
        return samples if done else None

    pipeline = wait_for(pipeline_counted, timeout=15, what="the pipeline worker's counts", interval=0.2)
    # The seed's objective: received → reply sent, labelled by skill and channel, in 2 s-resolving buckets.
    assert total(pipeline, "ai_processing_seconds_count", channel="webhook") == 3
    buckets = {dict(lbl)["le"] for (n, lbl) in pipeline if n == "ai_processing_seconds_bucket"}
    assert {"1.75", "2.0", "2.5", "30.0"} <= buckets  # (how fast a loaded test machine answers is not asserted)
    assert total(pipeline, "ai_processing_seconds_bucket", le="+Inf") == 3
    assert total(pipeline, "ai_processing_seconds_count", skill="help") == 1
    for stage in ("preprocess", "postprocess", "deliver"):
        assert total(pipeline, "dtbot_stage_seconds_count", stage=stage) >= 3
        assert total(pipeline, "dtbot_stage_queue_wait_seconds_count", stage=stage) >= 3
    assert total(pipeline, "dtbot_dingtalk_calls_total", family="webhook", code="200") == 3
    assert total(pipeline, "dtbot_router_decisions_total") >= 3
    assert total(pipeline, "process_cpu_seconds_total") > 0
    assert total(pipeline, "dtbot_queue_depth_up") == 1
    assert {dict(lbl)["queue"] for (n, lbl) in pipeline if n == "dtbot_queue_messages"} >= {
        "dtbot.preprocess", "dtbot.skills", "dtbot.skills.io", "dtbot.postprocess", "dtbot.deliver"}

    # run_skill ran in the prefork children; their main process's exporter sums them.
    skills = scrape(skills_port)
    assert total(skills, "dtbot_stage_seconds_count", stage="run_skill") == 3
    assert total(skills, "dtbot_skill_runs_total", outcome="ok") + total(
        skills, "dtbot_skill_runs_total", outcome="preset") == 3
    assert total(skills, "dtbot_worker_processes") >= 3  # the main process and two children
    assert total(skills, "process_resident_memory_bytes") > 0
    assert total(skills, "ai_processing_seconds_count") == 0  # deliver is the pipeline worker's
