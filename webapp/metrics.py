"""Prometheus metrics of the web role, read from the database at scrape time (cheap aggregates)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from webapp.models import AuditLog, DeadLetter, MessageRecord, MessageStatus
from webapp.models.audit import AuditAction


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


class AuditCollector(Collector):
    """The audit trail's health from its own rows: the last verification and the last archive run
    (docker/alerts.yml pages on a broken or unverified chain and a stale archive)."""

    def collect(self) -> Iterator[Metric]:
        verify = (AuditLog.objects.filter(action=AuditAction.AUDIT_VERIFY.value)
                  .order_by("-id").values("created_at", "detail").first())
        ok = GaugeMetricFamily("dtbot_audit_chain_ok", "1 if the last audit chain verification passed, else 0")
        ok.add_metric([], 1.0 if verify and (verify["detail"] or {}).get("ok") else 0.0)
        yield ok
        when = GaugeMetricFamily("dtbot_audit_chain_verified_timestamp_seconds",
                                 "When the audit chain was last verified (epoch seconds; 0: never)")
        when.add_metric([], verify["created_at"].timestamp() if verify else 0.0)
        yield when
        rows = GaugeMetricFamily("dtbot_audit_chain_rows_verified", "Rows the last verification checked")
        rows.add_metric([], float((verify["detail"] or {}).get("checked", 0)) if verify else 0.0)
        yield rows
        archived = (AuditLog.objects.filter(action=AuditAction.AUDIT_ARCHIVE.value, detail__ok=True)
                    .order_by("-id").values_list("created_at", flat=True).first())
        last = GaugeMetricFamily("dtbot_audit_archive_success_timestamp_seconds",
                                 "When the audit archive last succeeded (epoch seconds; 0: never)")
        last.add_metric([], archived.timestamp() if archived else 0.0)
        yield last


def registry() -> CollectorRegistry:
    """A registry holding only our collector (no process metrics of the web role's workers)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PipelineCollector())
    reg.register(AuditCollector())
    return reg
