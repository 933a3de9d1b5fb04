"""The audit trail outside the database: daily export, signed chain checkpoints, retention, restore and verify.

Layout under AUDIT_ARCHIVE_PREFIX in the bucket:

    days/YYYY-MM-DD/rows-<first id>-<last id>.jsonl.gz   the rows archived by one run, gzip JSON lines
    checkpoints/<last id>.json                          the chain's head after that run, HMAC-signed

A checkpoint names the last row, its hash, how many rows reach it, and the SHA-256 of the part it
closes; it is signed with AUDIT_HMAC_KEY, so neither a forged checkpoint nor a changed part passes.
The newest checkpoint is what `verify_chain` holds the database to: rows deleted from the chain's
tail (or an emptied table) no longer reach it. Parts older than AUDIT_RETENTION_DAYS are deleted;
checkpoints (a few hundred bytes a day) stay, so what remains still verifies from its first part.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from conf.settings import get_settings
from webapp.actions.audit import ChainReport, Checkpoint, audit_key, record_audit, verify_chain, verify_rows
from webapp.archive_store import ArchiveError, ArchiveStore, sha256_hex
from webapp.models.audit import AuditAction, AuditLog

log = logging.getLogger(__name__)

DAYS = "days/"
CHECKPOINTS = "checkpoints/"


def _sign(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(audit_key(), b"checkpoint:" + canonical, "sha256").hexdigest()


def checkpoint_document(checkpoint: Checkpoint, **extra: Any) -> bytes:
    body = {**checkpoint.to_dict(), **extra}
    return json.dumps({**body, "hmac": _sign(body)}, sort_keys=True, indent=1).encode()


def read_checkpoint(data: bytes) -> tuple[Checkpoint, dict[str, Any]]:
    """A checkpoint and its fields, or ArchiveError when its signature does not match."""
    body = json.loads(data)
    signature = str(body.pop("hmac", ""))
    if not hmac.compare_digest(signature, _sign(body)):
        raise ArchiveError(f"checkpoint {body.get('last_id')} is not signed with AUDIT_HMAC_KEY (forged or changed)")
    return Checkpoint.from_dict(body), body


def latest_checkpoint(store: ArchiveStore) -> tuple[Checkpoint, dict[str, Any]] | None:
    names = [n for n in store.names(CHECKPOINTS) if n.endswith(".json")]
    return read_checkpoint(store.get(names[-1])) if names else None


def rows_document(rows: list[AuditLog]) -> bytes:
    lines = "".join(json.dumps(r.to_archive(), sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    return gzip.compress(lines.encode("utf-8"), mtime=0)  # mtime 0: the same rows, the same bytes


def rows_from(data: bytes) -> list[AuditLog]:
    """Archived lines back into (unsaved) AuditLog rows, as the database held them."""
    out = []
    for line in gzip.decompress(data).decode("utf-8").splitlines():
        item = json.loads(line)
        out.append(AuditLog(
            id=item["id"], created_at=dt.datetime.fromisoformat(item["created_at"]), actor=item["actor"],
            action=item["action"], tenant_id=item["tenant_id"], target_type=item["target_type"],
            target_id=item["target_id"], before=item["before"], after=item["after"], detail=item["detail"],
            prev_hash=item["prev_hash"], entry_hash=item["entry_hash"], hash_scheme=item["hash_scheme"],
        ))
    return out


def do_archive_audit(now: dt.datetime | None = None, actor: str = "system") -> dict[str, Any]:
    """Export the rows since the last checkpoint, verify them read back, write the new checkpoint,
    drop parts past retention; one audit.archive row says what was done (or why it failed)."""
    store = ArchiveStore.from_settings()
    if store is None:
        return {"archived": 0, "skipped": "AUDIT_ARCHIVE_BUCKET is not set"}
    try:
        result = _archive(store, now or timezone.now())
    except ArchiveError as exc:
        record_audit(actor=actor, action=AuditAction.AUDIT_ARCHIVE, target_type="audit_archive",
                     detail={"ok": False, "error": str(exc)[:1000]})
        raise
    record_audit(actor=actor, action=AuditAction.AUDIT_ARCHIVE, target_type="audit_archive",
                 target_id=str(result.get("head_id", result["after_id"])), detail={"ok": True, **result})
    return result


def _archive(store: ArchiveStore, now: dt.datetime) -> dict[str, Any]:
    previous = latest_checkpoint(store)
    after_id, prev_hash = (previous[0].last_id, previous[0].head_hash) if previous else (0, AuditLog.GENESIS)
    rows = list(AuditLog.objects.filter(pk__gt=after_id).order_by("id"))
    result: dict[str, Any] = {"archived": len(rows), "after_id": after_id}
    if rows:
        if rows[0].prev_hash != prev_hash:
            raise ArchiveError(f"row {rows[0].pk} does not continue the archived chain at row {after_id}")
        day = timezone.localdate(now).isoformat()
        part = f"{DAYS}{day}/rows-{rows[0].pk:012d}-{rows[-1].pk:012d}.jsonl.gz"
        digest = store.put_verified(part, rows_document(rows), "application/gzip")
        head = Checkpoint(rows[-1].pk, rows[-1].entry_hash, AuditLog.objects.filter(pk__lte=rows[-1].pk).count())
        name = f"{CHECKPOINTS}{head.last_id:012d}.json"
        store.put_verified(name, checkpoint_document(head, first_id=rows[0].pk, part=part, part_sha256=digest,
                                                     rows=len(rows), written_at=now.isoformat()),
                           "application/json")
        result.update(part=part, part_sha256=digest, checkpoint=name, head_id=head.last_id)
    result["expired"] = expire_parts(store, now)
    return result


def expire_parts(store: ArchiveStore, now: dt.datetime) -> int:
    """Delete the day folders older than AUDIT_RETENTION_DAYS (never fewer than 180 days)."""
    cutoff = (timezone.localdate(now) - dt.timedelta(days=get_settings().audit_retention_days)).isoformat()
    old = [n for n in store.names(DAYS) if n[len(DAYS):len(DAYS) + 10] < cutoff]
    if old:
        store.delete(old)
    return len(old)


def do_verify_audit_chain(actor: str = "system") -> ChainReport:
    """Verify the database's chain against the newest archived checkpoint (when there is an
    archive); the result is itself an audit row, which the web role's metrics read."""
    problem, checkpoint = "", None
    store = ArchiveStore.from_settings()
    if store is not None:
        try:
            found = latest_checkpoint(store)
            checkpoint = found[0] if found else None
        except ArchiveError as exc:
            problem = str(exc)
    report = verify_chain(checkpoint)
    if problem and report.ok:
        report = ChainReport(report.checked, None, problem, report.head_id, report.head_hash)
    record_audit(actor=actor, action=AuditAction.AUDIT_VERIFY, target_type="audit_chain",
                 target_id=str(report.head_id),
                 detail={**report.to_dict(), "checkpoint": checkpoint.to_dict() if checkpoint else None})
    if not report.ok:
        log.error("audit chain verification failed: %s (row %s)", report.reason, report.broken_at)
    return report


@dataclass
class RestoreReport:
    """What a restore found: parts and rows checked, rows the database lacks or holds differently."""

    parts: int = 0
    rows: int = 0
    missing_in_db: list[int] = field(default_factory=list)
    different_in_db: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    loaded: int = 0

    @property
    def ok(self) -> bool:
        return not (self.problems or self.missing_in_db or self.different_in_db)


def restore_and_verify(*, load: bool = False, actor: str = "system") -> RestoreReport:
    """Read every checkpoint and part, check signatures, digests and the chain across parts,
    compare with the database; `load` inserts the rows the database lacks (as the owner)."""
    store = ArchiveStore.from_settings()
    report = RestoreReport()
    if store is None:
        report.problems.append("AUDIT_ARCHIVE_BUCKET is not set")
        return report
    checkpoints = {}
    for name in store.names(CHECKPOINTS):
        try:
            checkpoint, body = read_checkpoint(store.get(name))
        except ArchiveError as exc:
            report.problems.append(str(exc))
            continue
        checkpoints[str(body.get("part", ""))] = (checkpoint, body)
    prev: str | None = None
    archived: list[AuditLog] = []
    for part in store.names(DAYS):
        report.parts += 1
        if part not in checkpoints:
            report.problems.append(f"{part} has no checkpoint")
            continue
        checkpoint, body = checkpoints[part]
        data = store.get(part)
        if sha256_hex(data) != body.get("part_sha256"):
            report.problems.append(f"{part} differs from its checkpoint's SHA-256")
            continue
        rows = rows_from(data)
        start = prev if prev is not None else rows[0].prev_hash  # the first part kept: trust its link
        chain = verify_rows(rows, audit_key(), start)
        if not chain.ok:
            report.problems.append(f"{part}: {chain.reason} at row {chain.broken_at}")
        elif chain.head_id != checkpoint.last_id or chain.head_hash != checkpoint.head_hash:
            report.problems.append(f"{part} does not end at its checkpoint's head")
        prev = rows[-1].entry_hash if rows else prev
        archived.extend(rows)
        report.rows += len(rows)
    held = dict(AuditLog.objects.filter(pk__in=[r.pk for r in archived]).values_list("pk", "entry_hash"))
    report.missing_in_db = [r.pk for r in archived if r.pk not in held]
    report.different_in_db = [r.pk for r in archived if r.pk in held and held[r.pk] != r.entry_hash]
    if load and report.missing_in_db and not report.problems:
        missing = set(report.missing_in_db)
        with transaction.atomic():
            AuditLog.objects.bulk_create([r for r in archived if r.pk in missing])
            with connection.cursor() as cursor:  # the id sequence continues after the restored rows
                cursor.execute("SELECT setval(pg_get_serial_sequence('webapp_auditlog', 'id'), "
                               "GREATEST((SELECT MAX(id) FROM webapp_auditlog), 1))")
            report.loaded = len(missing)
            record_audit(actor=actor, action=AuditAction.AUDIT_RESTORE, target_type="audit_archive",
                         detail={"loaded": report.loaded, "first": min(missing), "last": max(missing)})
        report.missing_in_db = []
    return report
