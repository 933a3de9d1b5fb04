"""Listener metrics: ACK latency histogram, frame/ACK/drop counters, buffer, journal and connection-gap gauges,
process CPU and memory, p50/p99 window."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from contract.envelope import TOPIC_BOT_MESSAGE, TOPIC_CARD_CALLBACK
from ingest.journal import Journal
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

    def __init__(self, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_cpu_seconds_total, process_resident_memory_bytes, ... of this listener (the CPU alert's input)
        ProcessCollector(registry=r)
        self._clock = clock
        # Since when no Stream socket has been open (the start counts: not connected yet).
        self._gap_since: float | None = clock()
        self.connection_gap = Gauge(
            "stream_connection_gap_seconds", "Seconds without an open Stream connection so far (0 while connected)",
            registry=r,
        )
        self.connection_gap.set_function(self._gap_seconds)
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
        self.published = Counter("ingest_published", "Envelopes made durable on the broker", registry=r)
        self.journaled = Counter(
            "ingest_journaled", "Envelopes kept in the local journal (the broker could not take them)", registry=r
        )
        self.replayed = Counter("ingest_replayed", "Journaled envelopes the broker has confirmed", registry=r)
        self.overflowed = Counter(
            "ingest_buffer_overflows", "Pushes the full buffer sent straight to the journal", registry=r
        )
        self.journal_depth = Gauge("ingest_journal_depth", "Envelopes in the journal, not yet on the broker",
                                   registry=r)
        self.journal_bytes = Gauge("ingest_journal_bytes", "Journal size counted against INGEST_JOURNAL_MAX_BYTES",
                                   registry=r)
        self.journal_age = Gauge("ingest_journal_age_seconds", "Age of the oldest journaled envelope (0: empty)",
                                 registry=r)
        self.handoff_alive = Gauge("ingest_handoff_alive", "1 while the hand-off thread runs", registry=r)
        self.confirm_latency = Histogram(
            "ingest_confirm_latency_seconds",
            "Start of writing a batch to the broker until it is confirmed (RabbitMQ) or LPUSHed (Redis)",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.window = LatencyWindow()
        self._frame_counters: dict[tuple[str, str], Any] = {}

    def set_connections(self, count: int) -> None:
        """The number of open Stream sockets changed: the gauge, and the start or end of a gap."""
        self.connections.set(count)
        if count > 0:
            self._gap_since = None
        elif self._gap_since is None:
            self._gap_since = self._clock()

    def _gap_seconds(self) -> float:
        since = self._gap_since
        return 0.0 if since is None else max(0.0, self._clock() - since)

    def watch_journal(self, journal: Journal) -> None:
        """Journal gauges read at scrape time (depth, bytes, age of the oldest envelope)."""
        self.journal_depth.set_function(lambda: journal.depth)
        self.journal_bytes.set_function(lambda: journal.size_bytes)
        self.journal_age.set_function(journal.age_seconds)

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
