"""The listener against the project's DingTalk sandbox and a real RabbitMQ: ACK after durable, always."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from testkit.personas import alice, bob
from testkit.tcpproxy import tcp_proxy
from testkit.waits import wait_for
from tests.ingest.conftest import drain_queue, fast_config, running_listener

pytestmark = pytest.mark.slow


def _queued_msg_ids(url: str) -> list[str]:
    return [m.decode()[0][0]["msg_id"] for m in drain_queue(url)]


def _send(dingtalk, n: int, prefix: str = "hi") -> list[str]:
    return [alice.send(dingtalk, text=f"{prefix} {i}")["msgId"] for i in range(n)]


def _wait_connected(dingtalk, registrations: int, timeout: float = 10.0) -> None:
    """Until the n-th registration's socket is live (the sandbox counts a registration first)."""
    wait_for(lambda: dingtalk.state()["registrations"] >= registrations, timeout=timeout)
    wait_for(lambda: any(not c["disconnecting"] for c in dingtalk.connections()), timeout=timeout)


def _metric(listener, name: str, **labels) -> float:
    return listener.metrics.registry.get_sample_value(name, labels) or 0.0


def test_each_message_is_acked_once_it_is_on_the_broker(sandbox, dingtalk, rabbit_broker):
    with running_listener(fast_config(sandbox.base_url, rabbit_broker)) as listener:
        msg_ids = _send(dingtalk, 30)
        dingtalk.wait_for_state(acked=30)
        assert _metric(listener, "ingest_acks_total") == 30
    acks = [a for a in dingtalk.acks() if a["kind"] == "push"]
    assert sorted(a["msgId"] for a in acks) == sorted(msg_ids)
    assert {a["code"] for a in acks} == {200}
    assert {json.loads(a["data"])["response"] for a in acks} == {None}
    assert sorted(_queued_msg_ids(rabbit_broker)) == sorted(msg_ids)


def test_the_registration_subscribes_bot_messages_card_callbacks_and_events(sandbox, dingtalk, rabbit_broker):
    with running_listener(fast_config(sandbox.base_url, rabbit_broker)):
        (conn,) = wait_for(dingtalk.connections)
    subs = {(s["type"], s["topic"]) for s in conn["subscriptions"]}
    assert subs == {("CALLBACK", "/v1.0/im/bot/messages/get"), ("CALLBACK", "/v1.0/card/instances/callback"),
                    ("EVENT", "*")}


def test_server_pings_are_echoed_with_their_opaque(sandbox, dingtalk, rabbit_broker):
    dingtalk.configure(ping_interval=0.2)
    with running_listener(fast_config(sandbox.base_url, rabbit_broker)):
        wait_for(lambda: sum(p["echoed"] for p in dingtalk.pings()) >= 3)
    echoed = [p for p in dingtalk.pings() if p["echoed"]]
    assert all(p["echo_ok"] and p["code"] == 200 for p in echoed)


def test_a_disconnect_opens_a_new_connection_at_once_and_loses_nothing(sandbox, dingtalk, rabbit_broker):
    with running_listener(fast_config(sandbox.base_url, rabbit_broker)) as listener:
        _send(dingtalk, 10, "before")
        dingtalk.wait_for_state(acked=10)
        stop = threading.Event()
        sent: list[str] = []

        def keep_sending() -> None:
            while not stop.is_set():
                sent.append(bob.send(dingtalk, text="during")["msgId"])
                time.sleep(0.01)

        sender = threading.Thread(target=keep_sending)
        sender.start()
        time.sleep(0.3)
        asked = time.monotonic()
        dingtalk.fault("disconnect", grace=2.0)
        wait_for(lambda: dingtalk.state()["registrations"] == 2, timeout=5)
        reconnect_took = time.monotonic() - asked
        time.sleep(0.5)
        stop.set()
        sender.join()
        state = dingtalk.wait_for_state(acked=10 + len(sent), timeout=10)
        assert _metric(listener, "ingest_reconnects_total", reason="disconnect") == 1
    assert reconnect_took < 1.0  # no back-off after a disconnect
    assert state["unacked"] == 0 and state["redelivered"] == 0
    disconnect_acks = [a for a in dingtalk.acks() if a["kind"] == "disconnect"]
    assert len(disconnect_acks) == 1 and disconnect_acks[0]["code"] == 200


def test_a_dropped_socket_reconnects_with_growing_backoff(sandbox, dingtalk, rabbit_broker, caplog):
    caplog.set_level(logging.WARNING, logger="ingest.listener")
    config = fast_config(sandbox.base_url, rabbit_broker, backoff_initial_seconds=0.3, healthy_reset_seconds=30)
    with running_listener(config) as listener:
        wait_for(dingtalk.connections)
        for expected in (2, 3):
            dingtalk.fault("drop_socket")
            _wait_connected(dingtalk, expected)
        msg_ids = _send(dingtalk, 5)
        dingtalk.wait_for_state(acked=5)
        assert len(listener.connections) == 1
        assert _metric(listener, "ingest_reconnects_total", reason="closed") == 2
    delays = [float(r.getMessage().rsplit("reconnecting in ", 1)[1].rstrip("s"))
              for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert len(delays) == 2
    assert 0.3 <= delays[0] <= 0.6 and 0.6 <= delays[1] <= 0.9  # 0.3 s, then 0.6 s, each + ≤0.3 s jitter
    assert sorted(_queued_msg_ids(rabbit_broker)) == sorted(msg_ids)


def test_system_pings_alone_keep_an_idle_socket_open(sandbox, dingtalk, rabbit_broker):
    dingtalk.configure(ping_interval=0.3)
    config = fast_config(sandbox.base_url, rabbit_broker, watchdog_seconds=1.0)
    with running_listener(config) as listener:
        wait_for(dingtalk.connections)
        time.sleep(2.5)
        assert dingtalk.state()["registrations"] == 1  # no false alarm on a quiet bot
        assert _metric(listener, "ingest_reconnects_total", reason="watchdog") == 0


def test_a_zombie_that_still_answers_pongs_is_closed_by_the_watchdog_and_replaced(sandbox, dingtalk, rabbit_broker,
                                                                                    caplog):
    dingtalk.configure(ping_interval=0.3)
    config = fast_config(sandbox.base_url, rabbit_broker, watchdog_seconds=1.5, ping_interval_seconds=0.2,
                         pong_timeout_seconds=1.0)
    with running_listener(config) as listener:
        wait_for(dingtalk.connections)
        zombie_at = time.monotonic()
        dingtalk.fault("zombie")
        # Pushes made meanwhile wait at the server (it pushes nothing to a socket it gave up).
        msg_ids = _send(dingtalk, 5)
        wait_for(lambda: dingtalk.state()["registrations"] == 2, timeout=10)
        detected_after = time.monotonic() - zombie_at
        dingtalk.wait_for_state(acked=5)
        assert _metric(listener, "ingest_reconnects_total", reason="watchdog") == 1
        # The zombie answered every WebSocket ping (0.2 s apart, 1 s pong timeout): not that watchdog.
        assert _metric(listener, "ingest_reconnects_total", reason="pong_timeout") == 0
    assert 1.0 <= detected_after < 1.5 + 1.0 + 2.0
    assert "pongs do not count" in caplog.text
    assert sorted(_queued_msg_ids(rabbit_broker)) == sorted(msg_ids)


def test_a_frozen_socket_is_closed_when_its_pong_is_overdue(sandbox, dingtalk, rabbit_broker, caplog):
    dingtalk.configure(ping_interval=0.2)
    config = fast_config(sandbox.base_url, rabbit_broker, watchdog_seconds=30.0, ping_interval_seconds=0.3,
                         pong_timeout_seconds=1.0)
    with running_listener(config) as listener:
        wait_for(dingtalk.connections)
        frozen_at = time.monotonic()
        dingtalk.fault("freeze")
        wait_for(lambda: dingtalk.state()["registrations"] == 2, timeout=10)
        assert time.monotonic() - frozen_at < 0.3 + 1.0 + 2.0  # long before the 30 s watchdog
        msg_ids = _send(dingtalk, 5)
        dingtalk.wait_for_state(acked=5)
        assert _metric(listener, "ingest_reconnects_total", reason="pong_timeout") == 1
    assert "ping unanswered" in caplog.text
    assert sorted(_queued_msg_ids(rabbit_broker)) == sorted(msg_ids)


def test_rejected_credentials_log_one_error_and_retry_slowly(sandbox, dingtalk, rabbit_broker, caplog):
    caplog.set_level(logging.DEBUG, logger="ingest")
    dingtalk.fault("reject_auth")
    with running_listener(fast_config(sandbox.base_url, rabbit_broker, auth_retry_seconds=1.0)):
        time.sleep(3.5)
        failures = dingtalk.state()["registration_failures"]
        dingtalk.fault("accept_auth")
        wait_for(dingtalk.connections, timeout=5)
        msg_ids = _send(dingtalk, 3)
        dingtalk.wait_for_state(acked=3)
    assert 3 <= failures <= 5  # one try per second, not a tight loop
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "DINGTALK_CLIENT_ID" in errors[0].getMessage() and "DINGTALK_CLIENT_SECRET" in errors[0].getMessage()
    assert "accepted the credentials again" in caplog.text
    assert sorted(_queued_msg_ids(rabbit_broker)) == sorted(msg_ids)


def test_bad_frames_are_answered_or_skipped_and_good_messages_still_flow(sandbox, dingtalk, rabbit_broker, caplog):
    caplog.set_level(logging.INFO, logger="ingest")
    with running_listener(fast_config(sandbox.base_url, rabbit_broker)) as listener:
        wait_for(dingtalk.connections)
        dingtalk.push_raw('{"type": "CALLBACK", "headers": {"topic"')
        dingtalk.push_raw(json.dumps({"type": "CALLBACK", "headers": {"topic": "/v1.0/im/bot/messages/get"},
                                      "data": "{}"}))
        dingtalk.push_raw(json.dumps({"type": "CALLBACK", "headers": {"topic": "/v1.0/im/bot/messages/get",
                                      "messageId": "mid-notjson"}, "data": "{nope"}))
        unknown = "mid-unknown-topic"  # the sandbox only pushes subscribed topics; a raw frame can lie
        dingtalk.push_raw(json.dumps({"type": "CALLBACK", "headers": {"topic": "/v1.0/graph/api/invoke",
                                      "messageId": unknown}, "data": "{}"}))
        huge = alice.send(dingtalk, text="巨" * 300_000)["msgId"]
        empty = alice.send(dingtalk, text="")["msgId"]
        normal = _send(dingtalk, 5)
        dingtalk.wait_for_state(acked=7)
        wait_for(lambda: {a["messageId"] for a in dingtalk.acks()} >= {unknown, "mid-notjson"})
        assert listener.active is not None and len(listener.connections) == 1
    codes = {a["messageId"]: a["code"] for a in dingtalk.acks()}
    assert codes[unknown] == 404 and codes["mid-notjson"] == 400
    assert dingtalk.state()["registrations"] == 1  # never crashed or reconnected
    assert sorted(_queued_msg_ids(rabbit_broker)) == sorted([huge, empty, *normal])
    for needle in ("malformed frame of", "no headers.messageId", "messageId=mid-notjson",
                   f"messageId={unknown}", f"msgId={huge}", f"empty text message msgId={empty}"):
        assert needle in caplog.text


def test_a_huge_text_under_the_frame_cap_reaches_the_broker_untruncated(sandbox, dingtalk, rabbit_broker):
    """A deployment that raises INGEST_MAX_FRAME_BYTES gets whole 2 MB texts (over the cap: test_dispatch)."""
    text = "x" * 2_000_000
    with running_listener(fast_config(sandbox.base_url, rabbit_broker, max_frame_bytes=4 * 1024 * 1024)):
        alice.send(dingtalk, text=text)
        dingtalk.wait_for_state(acked=1)
    (msg,) = drain_queue(rabbit_broker)
    assert msg.decode()[0][0]["payload"]["text"]["content"] == text


def test_a_broker_outage_is_journaled_acked_at_once_and_replayed_when_it_returns(sandbox, dingtalk, rabbit_broker,
                                                                                   caplog):
    assert dingtalk.config()["redelivery"] == "events"  # robot messages are never pushed again
    with tcp_proxy() as proxy:
        config = fast_config(sandbox.base_url, proxy.url_for(rabbit_broker), backoff_max_seconds=1.0)
        with running_listener(config) as listener:
            first = _send(dingtalk, 5, "first")
            dingtalk.wait_for_state(acked=5)
            proxy.cut()
            batch = dingtalk.send_batch([{"text": f"outage {i}", "user_id": bob.staff_id} for i in range(1200)])
            # Far more than the buffer holds (1000): every push is ACKed once it is on disk.
            dingtalk.wait_for_state(acked=1205, timeout=30)
            assert 1200 <= listener.journal.depth <= 1205
            assert _metric(listener, "ingest_journal_depth") == listener.journal.depth
            health = listener.check_health()
            assert health.ready and health.detail["broker"] == "down"
            proxy.restore()
            # (The counter follows the last batch's removal from the journal.)
            wait_for(lambda: listener.journal.depth == 0 and _metric(listener, "ingest_replayed_total") >= 1200,
                     timeout=30)
            assert _metric(listener, "ingest_broker_outages_total") == 1
            assert _metric(listener, "ingest_not_acked_total", reason="journal_full") == 0
    assert "broker unreachable" in caplog.text and "journal drained" in caplog.text
    state = dingtalk.state()
    assert state["unacked"] == 0 and state["redelivered"] == 0
    queued = _queued_msg_ids(rabbit_broker)
    expected = set(first) | {m["msgId"] for m in batch}
    assert set(queued) == expected  # nothing lost (a confirm lost in the cut may add a duplicate)


def test_no_threads_or_sockets_leak_across_reconnects(sandbox, dingtalk, rabbit_broker):
    import os

    config = fast_config(sandbox.base_url, rabbit_broker, backoff_initial_seconds=0.05, backoff_max_seconds=0.1)
    with running_listener(config) as listener:
        wait_for(dingtalk.connections)
        time.sleep(0.5)
        fds_before = len(os.listdir("/proc/self/fd"))
        for i in range(6):
            dingtalk.fault("drop_socket" if i % 2 else "disconnect", grace=0.2)
            _wait_connected(dingtalk, i + 2)
        wait_for(lambda: len(listener.connections) == 1 and len(dingtalk.connections()) == 1, timeout=10)
        time.sleep(0.5)
        readers = [t for t in threading.enumerate() if t.name.startswith("ingest-conn-")]
        assert len(readers) == 1
        assert len(os.listdir("/proc/self/fd")) <= fds_before + 2
        _send(dingtalk, 3)
        dingtalk.wait_for_state(acked=3)
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-")]


@pytest.mark.redis_broker
def test_on_the_redis_broker_each_message_is_acked_once_it_is_pushed(sandbox, dingtalk, redis_broker):
    with running_listener(fast_config(sandbox.base_url, redis_broker)):
        msg_ids = _send(dingtalk, 20)
        dingtalk.wait_for_state(acked=20)
    assert sorted(_queued_msg_ids(redis_broker)) == sorted(msg_ids)


def test_ack_times_land_in_redis_for_the_message_record(sandbox, dingtalk, rabbit_broker, redis_prefix):
    import redis

    with running_listener(fast_config(sandbox.base_url, rabbit_broker, key_prefix=redis_prefix)):
        (msg_id,) = _send(dingtalk, 1)
        dingtalk.wait_for_state(acked=1)
        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        acked_at = float(wait_for(lambda: client.get(f"{redis_prefix}acked:{msg_id}")))  # type: ignore[arg-type]  # bytes of a float
        client.close()
    push = next(p for p in dingtalk.pushes() if p["msgId"] == msg_id)
    assert push["pushedAt"][0] <= acked_at <= push["ackedAt"] + 1.0


def test_readiness_and_liveness_are_served_beside_the_metrics(sandbox, dingtalk, rabbit_broker):
    import httpx

    from testkit.services import free_port

    dingtalk.fault("reject_auth")
    port = free_port()
    with running_listener(fast_config(sandbox.base_url, rabbit_broker, metrics_port=port, auth_retry_seconds=0.3)):
        base = f"http://127.0.0.1:{port}"
        not_yet = wait_for(lambda: _get(httpx, f"{base}/readyz"))
        assert not_yet.status_code == 503 and not_yet.json()["stream"] == "connecting"
        gap = wait_for(lambda: _sample(_get(httpx, f"{base}/metrics"), "stream_connection_gap_seconds"))
        assert gap > 0  # refused credentials: no connection since the start
        assert _get(httpx, f"{base}/livez").status_code == 200
        dingtalk.fault("accept_auth")
        ready = wait_for(lambda: (r := _get(httpx, f"{base}/readyz")) is not None and r.status_code == 200 and r)
        body = ready.json()
        assert body["handoff"] == "alive" and body["broker"] == "up" and body["journal"]["depth"] == 0
        metrics = _get(httpx, f"{base}/metrics").text
        assert "ingest_journal_depth 0.0" in metrics and "ingest_handoff_alive 1.0" in metrics
        assert "stream_connection_gap_seconds 0.0" in metrics
        assert (_sample(_get(httpx, f"{base}/metrics"), "process_cpu_seconds_total") or 0) > 0
        assert (_sample(_get(httpx, f"{base}/metrics"), "process_resident_memory_bytes") or 0) > 0


def _sample(response, name: str) -> float | None:
    """One unlabelled sample of a /metrics answer (None while the port does not answer)."""
    if response is None:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    return next((s.value for f in text_string_to_metric_families(response.text) for s in f.samples
                 if s.name == name), None)


def _get(httpx, url: str):
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def test_a_dead_hand_off_thread_stops_the_listener_with_exit_code_1(sandbox, dingtalk, rabbit_broker, caplog):
    from ingest.listener import Listener
    from ingest.publish import BrokerPublisher

    class BrokenPublisher(BrokerPublisher):
        def connect(self) -> None:
            raise RuntimeError("a bug in the publisher")

    listener = Listener(fast_config(sandbox.base_url, rabbit_broker), publisher=BrokenPublisher(rabbit_broker))
    thread = threading.Thread(target=listener.run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the listener kept running without its hand-off thread"
    assert listener.exit_code == 1
    assert not listener.check_health().live
    assert "hand-off thread died" in caplog.text and "after a fatal error" in caplog.text
