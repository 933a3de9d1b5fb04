"""The listener loses nothing DingTalk gave it: zombie sockets, broker outages, a kill -9 mid-outage, late ACKs.

The sandbox behaves as DingTalk's FAQ says (robot messages are pushed once, never again) unless a
test asks for re-pushes. Each scenario prints injected / ACKed / answered / duplicates / lost and
its recovery time, and ends with every message answered exactly once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from sandbox.client import SandboxClient
from testkit import traffic
from testkit.ledger import Ledger, Verdict
from testkit.stack import Stack, wait_until
from testkit.tcpproxy import TcpProxy
from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow

# The issue measured a 60 s outage; 20 s keeps `make test` short and already holds 400 pushes, past
# the buffer (300 here) and with no re-push to fall back on (DTBOT_OUTAGE_SECONDS=60: the length).
OUTAGE_SECONDS = float(os.environ.get("DTBOT_OUTAGE_SECONDS", "20"))
WATCHDOG_SECONDS = 6  # 50 by default; scaled with the sandbox's SYSTEM ping (2 s here, ~30 s at DingTalk)


def _workers(bot: Stack) -> None:
    bot.start_pipeline_worker(concurrency=8)
    bot.start_skills_worker(concurrency=2)


def _report(name: str, client: SandboxClient, verdict: Verdict, recovery: float) -> None:
    state = client.state()
    answered = verdict.sent - len(verdict.lost)
    print(f"\n{name}: injected={verdict.sent} acked={state['acked']} answered={answered} "
          f"duplicates={len(verdict.duplicates)} lost={len(verdict.lost)} re-pushed={state['redelivered']} "
          f"recovery={recovery:.1f}s")


def _listener_log(bot: Stack) -> str:
    return "\n".join(p.log_text() for p in bot.procs if p.role == "listener")


def test_a_zombie_socket_that_still_answers_pongs_is_replaced_and_nothing_is_lost(stack: Stack):
    stack.start_sandbox(ping_interval=2)
    _workers(stack)
    stack.start_listener(INGEST_WATCHDOG_SECONDS=str(WATCHDOG_SECONDS), INGEST_PING_INTERVAL_SECONDS="1")
    client = sandbox_control(stack)
    client.wait_for_state(connections=1, timeout=30)
    ledger = Ledger()
    traffic.send(client, ledger, 60)
    traffic.wait_for_all(client, ledger, timeout=60, settle=0)

    client.fault("zombie")  # the server gives the socket up; its TCP stack keeps answering pings
    zombie_at = time.monotonic()
    traffic.send(client, ledger, 100, start=60, rate=20)  # these wait at the server meanwhile
    wait_until(lambda: client.state()["registrations"] >= 2, 60, "a new connection")
    detected = time.monotonic() - zombie_at
    verdict = ledger.check(traffic.wait_for_all(client, ledger, timeout=90))
    _report("zombie socket", client, verdict, detected)
    assert verdict.exactly_once, verdict.summary()
    # INGEST_WATCHDOG_SECONDS, then the reconnect back-off (1-2 s) and a busy box.
    assert WATCHDOG_SECONDS - 2 <= detected <= WATCHDOG_SECONDS + 10, detected
    assert "pongs do not count" in _listener_log(stack)


def test_a_broker_outage_mid_traffic_is_carried_by_the_journal_without_any_re_push(stack: Stack):
    proxy = TcpProxy(target_port=5672).start()
    try:
        stack.start_sandbox(ping_interval=5)
        _workers(stack)
        # Only the listener goes through the proxy: the outage is between ingest and the broker.
        stack.start_listener(CELERY_BROKER_URL=proxy.url_for(stack.broker_url), INGEST_BUFFER_MAX="300")
        client = sandbox_control(stack)
        client.wait_for_state(connections=1, timeout=30)
        ledger = Ledger()
        traffic.send(client, ledger, 50)
        traffic.wait_for_all(client, ledger, timeout=60, settle=0)

        proxy.cut()
        rate = 20.0
        count = int(OUTAGE_SECONDS * rate)
        traffic.send(client, ledger, count, start=50, rate=rate)  # far more than the buffer's 300
        # Everything read was ACKed: the journal holds it on the listener's disk.
        client.wait_for_state(acked=50 + count, timeout=30)
        assert ledger.check(client.replies()).replies == 50  # nothing got through meanwhile
        restored_at = time.monotonic()
        proxy.restore()
        verdict = ledger.check(traffic.wait_for_all(client, ledger, timeout=240))
        recovery = time.monotonic() - restored_at
        _report(f"broker down {OUTAGE_SECONDS:.0f}s", client, verdict, recovery)
        assert verdict.exactly_once, verdict.summary()
        assert client.state()["redelivered"] == 0
        assert "journal drained" in _listener_log(stack)
    finally:
        proxy.stop()


def test_a_listener_killed_while_the_broker_is_down_replays_its_journal_after_a_restart(stack: Stack):
    proxy = TcpProxy(target_port=5672).start()
    try:
        stack.start_sandbox(ping_interval=5)
        _workers(stack)
        broker = proxy.url_for(stack.broker_url)
        listener = stack.start_listener(CELERY_BROKER_URL=broker)
        client = sandbox_control(stack)
        client.wait_for_state(connections=1, timeout=30)
        ledger = Ledger()
        proxy.cut()
        traffic.send(client, ledger, 150, rate=100)
        client.wait_for_state(acked=150, timeout=30)  # all journaled (fsync'd), then ACKed
        stack.kill(listener, signal.SIGKILL)
        wait_until(lambda: client.state()["connections"] == 0, 10, "the server to see the socket go")
        # While no listener is connected the server keeps what it pushes for the next connection.
        traffic.send(client, ledger, 50, start=150)
        stack.start_listener(CELERY_BROKER_URL=broker)
        client.wait_for_state(acked=200, timeout=60)  # the new one journals these too
        restored_at = time.monotonic()
        proxy.restore()
        verdict = ledger.check(traffic.wait_for_all(client, ledger, timeout=180))
        recovery = time.monotonic() - restored_at
        _report("listener kill -9 during an outage", client, verdict, recovery)
        assert verdict.exactly_once, verdict.summary()
        assert "from an earlier run" in _listener_log(stack)
    finally:
        proxy.stop()


def test_dingtalk_re_pushing_a_message_after_a_late_ack_is_answered_once(stack: Stack):
    stack.start_sandbox(ping_interval=5, redelivery="all", redeliver_after=1.0)
    _workers(stack)
    stack.start_listener()
    client = sandbox_control(stack)
    client.wait_for_state(connections=1, timeout=30)
    # Every ACK reaches DingTalk 2.5 s late, after its re-push went out: each message comes twice or more.
    client.configure(ack_delay=2.5)
    ledger = Ledger()
    started = time.monotonic()
    traffic.send(client, ledger, 100, rate=50)
    verdict = ledger.check(traffic.wait_for_all(client, ledger, timeout=120, settle=4))
    _report("re-push after a late ACK", client, verdict, time.monotonic() - started)
    assert client.state()["redelivered"] >= 100  # the listener got (and published) the copies
    assert verdict.exactly_once, verdict.summary()
