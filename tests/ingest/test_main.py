"""`python -m ingest` as a process: runs until SIGTERM, ACKs what it made durable, exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.personas import alice
from testkit.tcpproxy import tcp_proxy
from testkit.waits import wait_for
from tests.ingest.conftest import SANDBOX_ID, SANDBOX_SECRET, drain_queue

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _start(gateway: str, broker: str, prefix: str, log_path: Path, journal: Path | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DINGTALK_CLIENT_ID=SANDBOX_ID,
        DINGTALK_CLIENT_SECRET=SANDBOX_SECRET,
        DINGTALK_OPENAPI_ENDPOINT=gateway,
        CELERY_BROKER_URL=broker,
        REDIS_KEY_PREFIX=prefix,
        INGEST_METRICS_PORT="0",
        INGEST_BACKOFF_MAX_SECONDS="1",
        INGEST_JOURNAL_DIR=str(journal or log_path.with_suffix(".journal")),
        LOG_LEVEL="INFO",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )


def _queued(url: str) -> list[str]:
    return [m.decode()[0][0]["msg_id"] for m in drain_queue(url)]


def _journaled(directory: Path) -> set[str]:
    from ingest.journal import Journal

    journal = Journal(directory, 1 << 30).open()
    try:
        return {e.msg_id for e in journal.read(0, 100_000)}
    finally:
        journal.close()


def _stop(proc: subprocess.Popen, timeout: float = 15) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def test_sigterm_after_traffic_exits_0_with_every_ack_backed_by_a_broker_message(
    sandbox, dingtalk, rabbit_broker, redis_prefix, tmp_path
):
    log = tmp_path / "ingest.log"
    proc = _start(sandbox.base_url, rabbit_broker, redis_prefix, log)
    try:
        wait_for(dingtalk.connections, timeout=20)
        batch = dingtalk.send_batch([{"text": f"m{i}", "user_id": alice.staff_id} for i in range(300)])
        time.sleep(0.05)  # stop mid-stream: some pushes are still being read or published
        started = time.monotonic()
        assert _stop(proc) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    acked = {p["msgId"] for p in dingtalk.pushes() if p["acked"]}
    queued = set(_queued(rabbit_broker))
    journaled = _journaled(tmp_path / "ingest.journal")
    # An ACK is never written for a message neither the broker nor the journal holds.
    assert acked <= queued | journaled
    assert acked and queued <= {m["msgId"] for m in batch}
    text = log.read_text()
    assert "received SIGTERM" in text and "listener stopped" in text


def test_sigterm_while_the_broker_is_down_journals_and_acks_the_rest_and_the_next_start_replays_it(
    sandbox, dingtalk, rabbit_broker, redis_prefix, tmp_path
):
    log = tmp_path / "ingest.log"
    journal = tmp_path / "journal"
    with tcp_proxy() as proxy:
        proc = _start(sandbox.base_url, proxy.url_for(rabbit_broker), redis_prefix, log, journal)
        try:
            wait_for(dingtalk.connections, timeout=20)
            alice.send(dingtalk, text="before")
            dingtalk.wait_for_state(acked=1, timeout=20)
            proxy.cut()
            stuck = [alice.send(dingtalk, text=f"stuck {i}")["msgId"] for i in range(5)]
            wait_for(lambda: "broker unreachable" in log.read_text(), timeout=20)
            started = time.monotonic()
            assert _stop(proc) == 0
            assert time.monotonic() - started < 15
        finally:
            if proc.poll() is None:
                proc.kill()
    assert dingtalk.state()["acked"] == 6  # kept on the listener's disk, so ACKed
    assert "stay journaled" in log.read_text()
    assert set(_queued(rabbit_broker)) <= {m["msgId"] for m in dingtalk.pushes()} - set(stuck)

    again = _start(sandbox.base_url, rabbit_broker, redis_prefix, tmp_path / "again.log", journal)
    try:
        wait_for(lambda: "journal drained" in (tmp_path / "again.log").read_text(), timeout=30)
        assert _stop(again) == 0
    finally:
        if again.poll() is None:
            again.kill()
    assert "from an earlier run" in (tmp_path / "again.log").read_text()
    assert set(stuck) <= set(_queued(rabbit_broker))


def test_two_listeners_on_one_journal_the_second_exits_2_naming_the_setting(sandbox, rabbit_broker, redis_prefix,
                                                                            tmp_path):
    journal = tmp_path / "journal"
    first = _start(sandbox.base_url, rabbit_broker, redis_prefix, tmp_path / "first.log", journal)
    try:
        wait_for(lambda: "connected to" in (tmp_path / "first.log").read_text(), timeout=20)
        second = _start(sandbox.base_url, rabbit_broker, redis_prefix, tmp_path / "second.log", journal)
        assert second.wait(20) == 2
        assert "INGEST_JOURNAL_DIR" in (tmp_path / "second.log").read_text()
    finally:
        _stop(first)
