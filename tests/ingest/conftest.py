"""Fixtures for the listener's tests: clean broker queues, envelopes, frames and a recording socket."""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import kombu
import pytest

from contract.envelope import TOPIC_BOT_MESSAGE, Envelope
from ingest.buffer import Pending
from ingest.config import IngestConfig
from ingest.envelope import envelope_from_frame
from ingest.listener import Listener
from ingest.protocol import parse_frame
from testkit.personas import alice
from workers.celery import app as celery_app

PREPROCESS_QUEUE = "dtbot.preprocess"


def bot_frame(msg_id: str = "msg-1", message_id: str | None = None, text: str = "hello", **data: Any) -> str:
    """A CALLBACK robot-message frame as the gateway sends it."""
    payload = {
        "msgId": msg_id,
        "msgtype": "text",
        "text": {"content": text},
        "conversationId": "cid-1",
        "conversationType": "1",
        "senderStaffId": alice.staff_id,
        "sessionWebhook": "http://127.0.0.1:1/session",
        **data,
    }
    return json.dumps(
        {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "topic": TOPIC_BOT_MESSAGE,
                "messageId": message_id or f"mid-{msg_id}",
                "contentType": "application/json",
                "time": str(int(time.time() * 1000)),
            },
            "data": json.dumps(payload),
        }
    )


def envelope(msg_id: str = "msg-1", text: str = "hello") -> Envelope:
    return envelope_from_frame(parse_frame(bot_frame(msg_id, text=text)), tenant_id="t1")


class RecordingSocket:
    """Stands in for a Stream socket: records the frames the listener writes."""

    def __init__(self, name: str = "conn-test", open_: bool = True) -> None:
        self.name = name
        self.sent: list[dict[str, Any]] = []
        self._open = open_
        self._lock = threading.Lock()

    def close(self) -> None:
        self._open = False

    def send_text(self, text: str) -> bool:
        if not self._open:
            return False
        with self._lock:
            self.sent.append(json.loads(text))
        return True

    def send_texts(self, texts: list[str]) -> bool:
        sent = [self.send_text(t) for t in texts]  # every one, as a socket would write them all
        return all(sent)

    def acked_message_ids(self) -> list[str]:
        return [f["headers"]["messageId"] for f in self.sent if f["code"] == 200]


def pending(msg_id: str, target: RecordingSocket, text: str = "hello") -> Pending:
    raw = bot_frame(msg_id, text=text)
    frame = parse_frame(raw)
    return Pending(envelope_from_frame(frame, "t1"), frame, target, time.monotonic())


def drain_queue(url: str, queue: str = PREPROCESS_QUEUE) -> list[kombu.Message]:
    """Take every message currently in `queue` (no workers run in these tests)."""
    messages = []
    with kombu.Connection(url) as conn:
        q = celery_app.amqp.queues[queue](conn.channel())
        q.declare()  # same durable declaration as the workers use
        while (msg := q.get(no_ack=True)) is not None:
            messages.append(msg)
    return messages


@pytest.fixture
def rabbit_broker(amqp_url: str) -> Iterator[str]:
    """The session vhost with an empty preprocess queue (the vhost is private to this run)."""
    drain_queue(amqp_url)
    yield amqp_url


@pytest.fixture
def redis_broker(redis_broker_url: str) -> Iterator[str]:
    """The Redis broker database claimed for this run, emptied (keeping the claim key)."""
    import redis

    client = redis.Redis.from_url(redis_broker_url)
    for key in client.scan_iter():
        if key != b"dtbot-test-broker-claim":
            client.delete(key)
    client.close()
    yield redis_broker_url


# ---- a listener against the in-process sandbox ------------------------------------------------

SANDBOX_ID = "sandbox-client-id"
SANDBOX_SECRET = "sandbox-client-secret"


def fast_config(gateway_url: str, broker_url: str, key_prefix: str = "ingest-test:", **over: Any) -> IngestConfig:
    """An IngestConfig with intervals small enough for tests (seconds, not minutes)."""

    values: dict[str, Any] = {
        "client_id": SANDBOX_ID,
        "client_secret": SANDBOX_SECRET,
        "openapi_endpoint": gateway_url,
        "broker_url": broker_url,
        "redis_url": "redis://127.0.0.1:6379/0",
        "redis_key_prefix": key_prefix,
        "tenant_id": "t1",
        "http_timeout_seconds": 3.0,
        "ping_interval_seconds": 0.5,
        "watchdog_seconds": 2.0,
        "pong_timeout_seconds": 1.0,
        "backoff_initial_seconds": 0.2,
        "backoff_max_seconds": 2.0,
        "healthy_reset_seconds": 5.0,
        "auth_retry_seconds": 1.5,
        "metrics_port": 0,
        "drain_grace_seconds": 3.0,
        "confirm_timeout_seconds": 2.0,
        "shutdown_grace_seconds": 2.0,
        "stats_interval_seconds": 1.0,
        # A journal of its own per listener: what one test leaves must not replay into the next.
        "journal_dir": tempfile.mkdtemp(prefix="ingest-journal-"),
    }
    values.update(over)
    return IngestConfig(**values)


@contextlib.contextmanager
def running_listener(config: IngestConfig) -> Iterator[Listener]:
    """A Listener on a background thread; stopped (and checked to stop) on exit."""

    listener = Listener(config)
    thread = threading.Thread(target=listener.run, name="test-listener", daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        listener.request_stop()
        thread.join(20)
        assert not thread.is_alive(), "listener did not stop"


@pytest.fixture
def sandbox() -> Iterator[Any]:
    from sandbox.dingtalk.server import SandboxServer

    with SandboxServer(ping_interval=0.5, redeliver_after=60.0) as server:
        yield server


@pytest.fixture
def dingtalk(sandbox: Any) -> Iterator[Any]:
    from sandbox.client import SandboxClient

    with SandboxClient(sandbox.base_url) as client:
        yield client
