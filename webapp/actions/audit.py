"""record_audit: append one row to the hash chain, inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from webapp.models.audit import AuditLog

# Any constant works; it serialises appenders so each row links to the true previous one.
_CHAIN_LOCK_KEY = 0x617564_6974


def _primitive(value: Any) -> Any:
    """JSON primitives only (dates, decimals, UUIDs → strings) so the hash is reproducible."""
    import json

    return None if value is None else json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def record_audit(
    *,
    actor: str,
    action: str,
    target_type: str = "",
    target_id: str = "",
    tenant_id: str = "",
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row. Call it inside the transaction that makes the change."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditLog.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        row = AuditLog(
            created_at=timezone.now(),
            actor=actor or "system",
            action=action,
            tenant_id=tenant_id,
            target_type=target_type,
            target_id=str(target_id),
            before=_primitive(before),
            after=_primitive(after),
            detail=_primitive(detail or {}),
            prev_hash=last or AuditLog.GENESIS,
        )
        row.entry_hash = row.compute_hash()
        row.save()
        return row


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying the chain: rows checked and the first broken row, if any."""

    checked: int
    broken_at: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_chain(batch: int = 2000) -> ChainReport:
    """Recompute every hash in order; report the first row that does not match."""
    prev = AuditLog.GENESIS
    checked = 0
    for row in AuditLog.objects.order_by("id").iterator(chunk_size=batch):
        if row.prev_hash != prev:
            return ChainReport(checked, row.pk, "prev_hash does not match the previous row")
        if row.compute_hash() != row.entry_hash:
            return ChainReport(checked, row.pk, "content does not match its hash")
        prev = row.entry_hash
        checked += 1
    return ChainReport(checked, None)
