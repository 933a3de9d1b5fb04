"""Prometheus metrics of the web role, read from the database at scrape time (cheap aggregates)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from webapp.models import DeadLetter, MessageRecord, MessageStatus


class PipelineCollector(Collector):
    """Message records by status and dead letters waiting for a replay."""

    def collect(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "dtbot_message_records", "Message records by status", labels=["status"]
        )
        counts = dict(
            MessageRecord.objects.values_list("status").annotate(n=Count("id")).order_by()
        )
        for status in MessageStatus.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        pending = GaugeMetricFamily(
            "dtbot_dead_letters_pending", "Dead letters not replayed yet"
        )
        pending.add_metric([], DeadLetter.objects.filter(replayed_at__isnull=True).count())
        yield pending


def registry() -> CollectorRegistry:
    """A registry holding only our collector (no process metrics of the web role's workers)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PipelineCollector())
    return reg
