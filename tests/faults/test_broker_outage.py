"""The broker unreachable for a while: the listener buffers (≤ 1000), then drains; every reply once."""

from __future__ import annotations

import time

import pytest

from testkit import traffic
from testkit.ledger import Ledger
from testkit.stack import Stack
from testkit.tcpproxy import TcpProxy

from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow


def test_a_broker_outage_is_buffered_then_drained_with_every_reply_sent_once(stack: Stack):
    proxy = TcpProxy(target_port=5672).start()
    try:
        stack.start_sandbox(redeliver_after=5, ping_interval=2)
        stack.start_pipeline_worker(concurrency=8)
        stack.start_skills_worker(concurrency=2)
        # Only the listener goes through the proxy: the outage is between ingest and the broker.
        stack.start_listener(CELERY_BROKER_URL=proxy.url_for(stack.broker_url), INGEST_BUFFER_MAX="300")
        client = sandbox_control(stack)
        client.wait_for_state(connections=1, timeout=30)
        ledger = Ledger()
        traffic.send(client, ledger, 50)
        traffic.wait_for_all(client, ledger, timeout=60, settle=0)

        proxy.cut()
        acked_before = client.state()["acked"]
        traffic.send(client, ledger, 450, start=50)
        time.sleep(3)
        # Nothing can be made durable, so nothing new is ACKed (at most what was in flight).
        assert client.state()["acked"] - acked_before <= 50
        proxy.restore()

        # 300 buffered drain at once; the 150 over the bound come back as DingTalk redeliveries.
        verdict = ledger.check(traffic.wait_for_all(client, ledger, timeout=120))
        assert verdict.exactly_once, verdict.summary()
        assert client.state()["redelivered"] > 0
    finally:
        proxy.stop()
