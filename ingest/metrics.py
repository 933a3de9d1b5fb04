"""Listener metrics: ACK latency histogram, frame/ACK/drop counters, buffer gauge, p50/p99 window."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from contract.envelope import TOPIC_BOT_MESSAGE, TOPIC_CARD_CALLBACK
from ingest.protocol import TOPIC_DISCONNECT, TOPIC_PING

# Fine buckets below 100 ms: the target is p99 ≤ 50 ms, and the benchmark interpolates in them.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
_KNOWN_TOPICS = {TOPIC_BOT_MESSAGE, TOPIC_CARD_CALLBACK, TOPIC_PING, TOPIC_DISCONNECT, "*"}


def topic_label(topic: str) -> str:
    """Bounded label values: a server can send any topic string."""
    return topic if topic in _KNOWN_TOPICS else "other"


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class LatencyWindow:
    """Exact ACK latencies since the last `snapshot()`, for the periodic log line."""

    def __init__(self, max_samples: int = 200_000) -> None:
        self._samples: list[float] = []
        self._max = max_samples
        self._lock = threading.Lock()

    def add_many(self, seconds: list[float]) -> None:
        with self._lock:
            room = self._max - len(self._samples)
            if room > 0:
                self._samples.extend(seconds[:room])

    def snapshot(self) -> LatencySummary:
        with self._lock:
            samples, self._samples = self._samples, []
        if not samples:
            return LatencySummary(0, 0.0, 0.0, 0.0)
        samples.sort()
        n = len(samples)

        def pct(p: float) -> float:
            return samples[min(n - 1, int(p * n))] * 1000.0

        return LatencySummary(n, pct(0.50), pct(0.99), samples[-1] * 1000.0)


class IngestMetrics:
    """One registry per listener, so several listeners in one test process do not collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._server: WSGIServer | None = None
        r = self.registry
        self.ack_latency = Histogram(
            "ingest_ack_latency_seconds", "Frame read to ACK written", buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.frames = Counter("ingest_frames", "Frames read", ["type", "topic"], registry=r)
        self.acks = Counter("ingest_acks", "ACK frames written after a durable hand-off", registry=r)
        self.acks_skipped = Counter(
            "ingest_acks_skipped", "Durable pushes whose socket closed before the ACK", registry=r
        )
        self.not_acked = Counter(
            "ingest_not_acked", "Pushes left un-ACKed (DingTalk redelivers)", ["reason"], registry=r
        )
        self.bad_frames = Counter(
            "ingest_bad_frames", "Frames answered with an error code or skipped", ["reason"], registry=r
        )
        self.buffer_size = Gauge(
            "ingest_buffer_size", "Envelopes read but not yet durable and ACKed", registry=r
        )
        self.reconnects = Counter(
            "ingest_reconnects", "New Stream connections opened after the first", ["reason"], registry=r
        )
        self.connections = Gauge("ingest_connections_open", "Open Stream sockets", registry=r)
        self.broker_outages = Counter(
            "ingest_broker_outages", "Times the broker became unreachable", registry=r
        )
        self.published = Counter("ingest_published", "Envelopes made durable", registry=r)
        self.confirm_latency = Histogram(
            "ingest_confirm_latency_seconds",
            "Start of writing a batch to the broker until it is confirmed (RabbitMQ) or LPUSHed (Redis)",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.window = LatencyWindow()
        self._frame_counters: dict[tuple[str, str], Any] = {}

    def count_frame(self, frame_type: str, topic: str) -> None:
        """frames_total{type, topic}; label children cached (this runs for every frame)."""
        key = (frame_type, topic_label(topic))
        child = self._frame_counters.get(key)
        if child is None:
            child = self._frame_counters[key] = self.frames.labels(*key)
        child.inc()

    def observe_acks(self, latencies: list[float]) -> None:
        for value in latencies:
            self.ack_latency.observe(value)
        self.acks.inc(len(latencies))
        self.window.add_many(latencies)

    def serve(self, port: int) -> int | None:
        """Expose /metrics on `port` (0 disables); returns the port served, if any."""
        if port <= 0:
            return None
        server, _thread = start_http_server(port, addr="0.0.0.0", registry=self.registry)
        self._server = server
        return int(server.server_port)

    def stop_serving(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
