"""Prometheus metrics of the web role, read from the database at scrape time (indexed counts and estimates only)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from webapp.models import AuditLog, DeadLetter, MessageRecord, MessageStatus
from webapp.models.audit import AuditAction

# A message's final status is counted where it happens, by the workers (dtbot_messages_total{outcome});
# here only the statuses a message passes through, which few rows hold at any time (status is indexed).
IN_FLIGHT = (MessageStatus.RECEIVED, MessageStatus.PROCESSING)


class PipelineCollector(Collector):
    """Messages in flight, the record table's size (the planner's estimate: no scan of the growing
    table) and dead letters waiting for a replay."""

    def collect(self) -> Iterator[Metric]:
        in_flight = GaugeMetricFamily(
            "dtbot_message_records_in_flight", "Message records not finished yet, by status", labels=["status"]
        )
        for status in IN_FLIGHT:
            in_flight.add_metric([status.value], MessageRecord.objects.filter(status=status).count())
        yield in_flight
        size = GaugeMetricFamily(
            "dtbot_message_records_estimate",
            "Message records kept (PostgreSQL's estimate; see MESSAGE_RECORD_RETENTION_DAYS)",
        )
        size.add_metric([], _estimated_rows(MessageRecord._meta.db_table))
        yield size
        pending = GaugeMetricFamily(
            "dtbot_dead_letters_pending", "Dead letters not replayed yet"
        )
        pending.add_metric([], DeadLetter.objects.filter(replayed_at__isnull=True).count())
        yield pending


def _estimated_rows(table: str) -> float:
    """pg_class.reltuples (kept by autovacuum/ANALYZE); -1 before the table was first analysed counts as 0."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return max(0.0, float(row[0])) if row and row[0] is not None else 0.0


class AuditCollector(Collector):
    """The audit trail's health from its own rows: the last verification and the last archive run
    (docker/prometheus/rules/dtbot.yml pages on a broken or unverified chain and a stale archive)."""

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
