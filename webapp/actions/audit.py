"""record_audit: append one row to the HMAC chain inside the caller's transaction; verify_chain checks it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from conf import redaction
from conf.settings import get_settings
from webapp.models.audit import AuditAction, AuditLog

log = logging.getLogger(__name__)

# Any constant works; it serialises appenders so each row links to the true previous one.
_CHAIN_LOCK_KEY = 0x617564_6974


def audit_key() -> bytes:
    """AUDIT_HMAC_KEY (never stored in the database). Development without one: a key derived from
    DJANGO_SECRET_KEY, so the chain is still keyed; production mode refuses to start without it."""
    settings = get_settings()
    if settings.audit_hmac_key:
        return settings.audit_hmac_key.encode("utf-8")
    return hmac.new(settings.django_secret_key.encode("utf-8"), b"dtbot-audit-chain", hashlib.sha256).digest()


def _primitive(value: Any) -> Any:
    """JSON primitives only (dates, decimals, UUIDs → strings) so the hash is reproducible; every
    string redacted (secrets, personal data as its class: an audit row never holds a phone number)."""
    return None if value is None else _redacted(json.loads(json.dumps(value, cls=DjangoJSONEncoder)))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redaction.redact(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    return value


def record_audit(
    *,
    actor: str,
    action: AuditAction,
    target_type: str = "",
    target_id: str = "",
    tenant_id: str = "",
    before: Any = None,
    after: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append an audit row. Call it inside the transaction that makes the change, as late as
    possible: the chain lock is held until that transaction ends."""
    if not isinstance(action, AuditAction):
        raise TypeError(f"audit actions are AuditAction members, not {action!r}")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        last = AuditLog.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        row = AuditLog(
            created_at=timezone.now(),
            actor=(actor or "system")[:256],
            action=action.value,
            tenant_id=tenant_id[:128],
            target_type=target_type[:128],
            target_id=str(target_id)[:256],
            before=_primitive(before),
            after=_primitive(after),
            detail=_primitive(detail or {}),
            prev_hash=last or AuditLog.GENESIS,
            hash_scheme=AuditLog.SCHEME,
        )
        row.entry_hash = row.compute_hash(audit_key())
        row.save()
        return row


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment (kept outside the database, in the archive)."""

    last_id: int
    head_hash: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"last_id": self.last_id, "head_hash": self.head_hash, "count": self.count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(int(data["last_id"]), str(data["head_hash"]), int(data["count"]))


@dataclass(frozen=True)
class ChainReport:
    """Result of verifying the chain: rows checked, its head, and the first broken row, if any."""

    checked: int
    broken_at: int | None
    reason: str = ""
    head_id: int = 0
    head_hash: str = AuditLog.GENESIS

    @property
    def ok(self) -> bool:
        return self.broken_at is None and not self.reason

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "broken_at": self.broken_at, "reason": self.reason,
                "head_id": self.head_id, "head_hash": self.head_hash}


def verify_rows(rows: Any, key: bytes, prev: str = AuditLog.GENESIS) -> ChainReport:
    """Recompute the chain over `rows` (AuditLog instances in id order) starting from `prev`."""
    checked, head_id, keyed = 0, 0, False
    for row in rows:
        if row.prev_hash != prev:
            return ChainReport(checked, row.pk, "prev_hash does not match the previous row", head_id, prev)
        if row.hash_scheme == AuditLog.LEGACY_SCHEME and keyed:
            return ChainReport(checked, row.pk, "an unkeyed row after keyed ones (forged)", head_id, prev)
        if row.hash_scheme not in (AuditLog.SCHEME, AuditLog.LEGACY_SCHEME):
            return ChainReport(checked, row.pk, f"unknown hash scheme {row.hash_scheme!r}", head_id, prev)
        if not hmac.compare_digest(row.compute_hash(key), row.entry_hash):
            return ChainReport(checked, row.pk, "content does not match its hash", head_id, prev)
        keyed = keyed or row.hash_scheme == AuditLog.SCHEME
        prev, head_id = row.entry_hash, row.pk
        checked += 1
    return ChainReport(checked, None, "", head_id, prev)


def verify_chain(checkpoint: Checkpoint | None = None, batch: int = 2000) -> ChainReport:
    """Recompute every hash in order; report the first row that does not match, and whether the
    chain still reaches `checkpoint` (rows deleted from its tail, or the table emptied, fail it)."""
    report = verify_rows(AuditLog.objects.order_by("id").iterator(chunk_size=batch), audit_key())
    if not report.ok or checkpoint is None or checkpoint.last_id == 0:
        return report
    held = AuditLog.objects.filter(pk=checkpoint.last_id).values_list("entry_hash", flat=True).first()
    if held is None:
        return _broken(report, f"row {checkpoint.last_id}, the archived checkpoint's head, is gone (tail deleted)")
    if held != checkpoint.head_hash:
        return _broken(report, f"row {checkpoint.last_id} differs from the archived checkpoint")
    below = AuditLog.objects.filter(pk__lte=checkpoint.last_id).count()
    if below != checkpoint.count:
        return _broken(report, f"{below} rows up to the checkpoint's head, the checkpoint counted {checkpoint.count}")
    return report


def _broken(report: ChainReport, reason: str) -> ChainReport:
    return ChainReport(report.checked, report.head_id or None, reason, report.head_id, report.head_hash)
