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


def _start(gateway: str, broker: str, prefix: str, log_path: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DINGTALK_CLIENT_ID=SANDBOX_ID,
        DINGTALK_CLIENT_SECRET=SANDBOX_SECRET,
        DINGTALK_OPENAPI_ENDPOINT=gateway,
        CELERY_BROKER_URL=broker,
        REDIS_KEY_PREFIX=prefix,
        INGEST_METRICS_PORT="0",
        INGEST_BACKOFF_MAX_SECONDS="1",
        LOG_LEVEL="INFO",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT
    )


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
    queued = {m.decode()[0][0]["msg_id"] for m in drain_queue(rabbit_broker)}
    assert acked <= queued  # an ACK is never written for a message the broker does not hold
    assert acked and queued <= {m["msgId"] for m in batch}
    text = log.read_text()
    assert "received SIGTERM" in text and "listener stopped" in text


def test_sigterm_while_the_broker_is_down_leaves_the_buffer_un_acked_and_exits_0(
    sandbox, dingtalk, rabbit_broker, redis_prefix, tmp_path
):
    log = tmp_path / "ingest.log"
    with tcp_proxy() as proxy:
        proc = _start(sandbox.base_url, proxy.url_for(rabbit_broker), redis_prefix, log)
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
    assert dingtalk.state()["acked"] == 1
    text = log.read_text()
    assert "left un-ACKed for redelivery" in text
    assert all(msg_id in text for msg_id in stuck)
