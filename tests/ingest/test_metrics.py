"""IngestMetrics: the connection-gap gauge and the process collector."""

from __future__ import annotations

from ingest.metrics import IngestMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gap(metrics: IngestMetrics) -> float:
    return metrics.registry.get_sample_value("stream_connection_gap_seconds") or 0.0


def test_the_gap_counts_from_the_start_until_a_connection_then_from_the_last_one_closing():
    clock = Clock()
    metrics = IngestMetrics(clock=clock)
    clock.now += 4
    assert gap(metrics) == 4  # never connected yet
    metrics.set_connections(1)
    assert gap(metrics) == 0
    metrics.set_connections(2)  # a reconnect overlaps the old socket: still no gap
    metrics.set_connections(1)
    clock.now += 30
    assert gap(metrics) == 0
    metrics.set_connections(0)
    clock.now += 31.5
    assert gap(metrics) == 31.5
    metrics.set_connections(0)  # another close reported while disconnected keeps the start
    clock.now += 1
    assert gap(metrics) == 32.5
    assert metrics.registry.get_sample_value("ingest_connections_open") == 0


def test_process_cpu_and_memory_are_in_the_listener_registry():
    metrics = IngestMetrics()
    assert (metrics.registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
    assert metrics.registry.get_sample_value("process_cpu_seconds_total") is not None
