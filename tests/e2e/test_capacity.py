"""Capacity with real workers: many LLM conversations at once on the I/O skills pool, the governor's
limit held across two worker processes at the stub, the busy notice at most once per message, and a
hung LLM stream cut at its timeout on a finalized card while other conversations are answered."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import redis

from sandbox.client import SandboxClient
from testkit.stack import SKILLS_IO_QUEUES, Stack
from testkit.waits import wait_for
from tests.support.skill_stack import CARD_TEMPLATE, TEST_APP, finished_card, start_pipeline
from workers.dingtalk.card_streamer import out_track_id_for
from workers.governor import endpoint_digest

pytestmark = pytest.mark.slow

NOTICE_PREFIXES = ("排队中", "Busy right now")


def start(stack: Stack, io_workers: int, **env: str) -> SandboxClient:
    """Sandbox, a pipeline worker, `io_workers` I/O skills workers (the Procfile's pool), listener."""
    stack.extra_env.update(env)
    stack.start_sandbox(redeliver_after=60)
    start_pipeline(stack)
    for _ in range(io_workers):
        stack.start_worker("worker-skills-io", SKILLS_IO_QUEUES, pool="threads", concurrency=32, app=TEST_APP)
    stack.start_listener()
    client = SandboxClient(stack.sandbox_url)
    client.wait_for_state(connections=1, timeout=30)
    return client


def slots_in_use(stack: Stack, base_url: str) -> int:
    r = redis.Redis.from_url(stack.redis_url)
    key = f"{stack.redis_prefix}llm:{endpoint_digest(base_url)}:holders"
    r.zremrangebyscore(key, "-inf", time.time())
    return int(r.zcard(key))


def test_forty_one_second_answers_within_ten_seconds_under_a_shared_limit(stack: Stack, stub):
    # ~1 s an answer: 0.3 s to the first token, then 24 tokens 0.03 s apart.
    stub.configure(first_token_delay=0.3, inter_token_delay=0.03, tokens=24)
    client = start(stack, io_workers=2, LLM_BASE_URL=stub.base_url, LLM_MODEL="stub-llm",
                   LLM_MAX_CONCURRENCY="10", BUSY_NOTICE_SECONDS="1.5")
    stub.reset()
    stub.configure(first_token_delay=0.3, inter_token_delay=0.03, tokens=24)
    started = time.monotonic()
    sent = client.send_batch([{"text": f"question {i}: what does the travel policy say?", "user_id": f"u{i}"} for i in range(40)])
    wanted = {m["msgId"] for m in sent}

    def answers() -> list[dict]:
        return [r for r in client.replies() if r["msg_id"] in wanted and not r["text"].startswith(NOTICE_PREFIXES)]

    wait_for(lambda: len(answers()) >= 40, 30, "40 answers")
    took = time.monotonic() - started
    time.sleep(1.0)  # a duplicate would show up now
    per_message = Counter(r["msg_id"] for r in answers())
    assert set(per_message) == wanted and set(per_message.values()) == {1}
    # Two conversations at a time (the old prefork pool) would need 20 s; ten at a time, ~4 s.
    assert took < 10, f"40 answers took {took:.1f} s"
    asked = [r for r in stub.requests() if r["stream"]]
    assert len(asked) == 40
    # The model server never saw more than the limit, though 64 threads in two processes could ask.
    peak = stub.state.peak_in_flight
    assert 2 < peak <= 10, peak
    assert slots_in_use(stack, stub.base_url) == 0  # every slot given back
    # Messages further back than ~1.5 s were told once; none twice.
    notices = Counter(r["msg_id"] for r in client.replies() if r["text"].startswith(NOTICE_PREFIXES))
    assert notices and set(notices.values()) == {1}
    assert set(notices) <= wanted


def test_a_hung_stream_is_cut_on_a_finalized_card_while_others_are_answered(stack: Stack, stub):
    client = start(stack, io_workers=1, LLM_BASE_URL=stub.base_url, LLM_MODEL="stub-llm",
                   DINGTALK_AI_CARD_TEMPLATE_ID=CARD_TEMPLATE, LLM_READ_TIMEOUT_SECONDS="3",
                   LLM_MAX_CONCURRENCY="4")
    stub.reset()
    # The hung answer sends three tokens, then nothing, the connection open.
    stub.configure(first_token_delay=0.1, inter_token_delay=0.02, tokens=20,
                   rules=[{"match": "HANG", "stall_after": 3}])
    hung = client.send_message("HANG please", user_id="u-hung")
    wait_for(lambda: any(r["outcome"] == "stalled" for r in stub.requests()), 30, "the stream to stall")
    others = client.send_batch([{"text": f"other question {i}", "user_id": f"u{i}"}
                                for i in range(8)])
    for message in others:
        card = finished_card(client, out_track_id_for(message["msgId"]), timeout=20)
        assert card["status"] == "finished"
    # Meanwhile the hung one is still open; it ends at its silence limit, on a finalized error card.
    card = finished_card(client, out_track_id_for(hung["msgId"]), timeout=20)
    assert card["status"] == "failed"
    assert "超时" in card["streams"]["content"] or "timed out" in card["streams"]["content"].lower()
    assert [u["isError"] for u in card["updates"] if u["kind"] == "streaming" and u["isFinalize"]] == [True]
    wait_for(lambda: slots_in_use(stack, stub.base_url) == 0, 10, "the hung answer's slot to come back")


def test_kill_9_of_the_io_skills_worker_mid_answers_loses_and_duplicates_nothing(stack: Stack, stub):
    client = start(stack, io_workers=1, LLM_BASE_URL=stub.base_url, LLM_MODEL="stub-llm", LLM_MAX_CONCURRENCY="8")
    stub.reset()
    stub.configure(first_token_delay=0.3, inter_token_delay=0.05, tokens=40)  # ~2 s an answer
    sent = client.send_batch([{"text": f"question {i} about expenses", "user_id": f"k{i}"} for i in range(20)])
    wanted = {m["msgId"] for m in sent}
    wait_for(lambda: stub.state.in_flight >= 5, 30, "answers to be streaming")
    [io_worker] = [p for p in stack.procs if p.role == "worker-skills-io"]
    stack.kill(io_worker)  # kill -9 of the pool with its answers half streamed
    stack.start_worker("worker-skills-io", SKILLS_IO_QUEUES, pool="threads", concurrency=32, app=TEST_APP)

    def answers() -> list[dict]:
        return [r for r in client.replies() if r["msg_id"] in wanted and not r["text"].startswith(NOTICE_PREFIXES)]

    wait_for(lambda: len(answers()) >= 20, 60, "20 answers after the kill")
    time.sleep(1.0)
    per_message = Counter(r["msg_id"] for r in answers())
    assert set(per_message) == wanted and set(per_message.values()) == {1}
    assert len([r for r in stub.requests() if r["stream"]]) > 20  # the killed answers were asked again
    # The redelivered copies took over their own slots: nothing is left held.
    wait_for(lambda: slots_in_use(stack, stub.base_url) == 0, 20, "every slot to come back")
