"""The audit log is insert-only and HMAC-chained: tampering is refused or detected, even by someone who can
recompute plain hashes, and a deleted tail is caught by the archived checkpoint."""

from __future__ import annotations

import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from testkit.personas import bob
from webapp.actions.audit import Checkpoint, audit_key, record_audit, verify_chain
from webapp.models import AuditLog
from webapp.models.audit import AuditAction

pytestmark = pytest.mark.django_db


def _three_rows() -> list[AuditLog]:
    return [
        record_audit(actor=bob.key, action=AuditAction.SKILL_SETTING_UPDATE, target_type="skill", target_id="echo",
                     before={"enabled": True}, after={"enabled": False}),
        record_audit(actor="system", action=AuditAction.USER_EXPORT, target_id="staff1", detail={"rows": 3}),
        record_audit(actor="alice", action=AuditAction.ADMIN_SETTING_UPDATE, before=None, after={"v": "温度 0.2"}),
    ]


def _sql(statement: str, *args) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, list(args))


def _tamper(statement: str, *args) -> None:
    """What the owner of the table could do: disable the trigger, change rows, enable it."""
    _sql("ALTER TABLE webapp_auditlog DISABLE TRIGGER USER")
    _sql(statement, *args)
    _sql("ALTER TABLE webapp_auditlog ENABLE TRIGGER USER")


def test_each_row_links_to_the_previous_one_with_a_keyed_hash():
    rows = _three_rows()
    assert rows[0].prev_hash == AuditLog.GENESIS
    assert rows[1].prev_hash == rows[0].entry_hash and rows[2].prev_hash == rows[1].entry_hash
    assert {r.hash_scheme for r in rows} == {AuditLog.SCHEME}
    plain = hashlib.sha256(rows[0].canonical()).hexdigest()
    assert rows[0].entry_hash != plain  # not recomputable without AUDIT_HMAC_KEY
    report = verify_chain()
    assert report.ok and report.checked == 3 and report.head_id == rows[2].pk


def test_only_audit_actions_are_recorded():
    with pytest.raises(TypeError, match="AuditAction"):
        record_audit(actor="bob", action="skill.update")  # type: ignore[arg-type]


def test_the_orm_refuses_updates_and_deletes():
    row = _three_rows()[0]
    row.actor = "mallory"
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        AuditLog.objects.all().delete()


@pytest.mark.parametrize("statement", [
    "UPDATE webapp_auditlog SET actor = 'mallory' WHERE id >= %s",
    "DELETE FROM webapp_auditlog WHERE id >= %s",
])
def test_the_database_refuses_updates_and_deletes_behind_the_orm(statement):
    row = _three_rows()[0]
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        _sql(statement, row.pk)


def test_the_database_refuses_truncate_even_for_the_owner():
    _three_rows()
    with pytest.raises(DatabaseError, match=r"insert-only \(TRUNCATE"), transaction.atomic():
        # This runner's sessions may flush tables between tests; a session that did not say so may not.
        _sql("SET LOCAL dtbot.allow_audit_truncate = off")
        _sql("TRUNCATE webapp_auditlog")
    assert AuditLog.objects.count() == 3


def test_a_row_changed_by_the_owner_is_found():
    rows = _three_rows()
    _tamper("UPDATE webapp_auditlog SET after = '{\"enabled\": true}' WHERE id = %s", rows[0].pk)
    report = verify_chain()
    assert not report.ok and report.broken_at == rows[0].pk and "content" in report.reason
    with pytest.raises(CommandError, match=f"broken at row {rows[0].pk}"):
        call_command("verify_audit_chain")


def test_a_row_rehashed_with_plain_sha256_is_found():
    """Whoever can write the table can recompute an unkeyed chain; a keyed one they cannot."""
    rows = _three_rows()
    forged = AuditLog.objects.get(pk=rows[2].pk)
    forged.after = {"v": "forged"}
    forged.hash_scheme = AuditLog.LEGACY_SCHEME
    _tamper("UPDATE webapp_auditlog SET after = %s::jsonb, hash_scheme = 'sha256', entry_hash = %s WHERE id = %s",
            '{"v": "forged"}', hashlib.sha256(forged.canonical()).hexdigest(), rows[2].pk)
    report = verify_chain()
    assert not report.ok and report.broken_at == rows[2].pk and "unkeyed row after keyed" in report.reason


def test_rows_from_before_the_key_verify_as_the_chains_prefix():
    """Rows written by the unkeyed chain (migration 0002 marks them sha256) still verify, first."""
    rows = _three_rows()
    _tamper("UPDATE webapp_auditlog SET hash_scheme = 'sha256' WHERE id = %s", rows[0].pk)
    legacy = AuditLog.objects.get(pk=rows[0].pk)
    _tamper("UPDATE webapp_auditlog SET entry_hash = %s WHERE id = %s", legacy.compute_hash(b""), rows[0].pk)
    _tamper("UPDATE webapp_auditlog SET prev_hash = %s WHERE id = %s", legacy.compute_hash(b""), rows[1].pk)
    # Row 1's content did not change, but its prev_hash did: only a key holder could re-seal it.
    fixed = AuditLog.objects.get(pk=rows[1].pk)
    _tamper("UPDATE webapp_auditlog SET entry_hash = %s WHERE id = %s", fixed.compute_hash(audit_key()), rows[1].pk)
    _tamper("UPDATE webapp_auditlog SET prev_hash = %s WHERE id = %s", fixed.compute_hash(audit_key()), rows[2].pk)
    third = AuditLog.objects.get(pk=rows[2].pk)
    _tamper("UPDATE webapp_auditlog SET entry_hash = %s WHERE id = %s", third.compute_hash(audit_key()), rows[2].pk)
    assert verify_chain().ok


def test_a_deleted_tail_is_found_against_the_checkpoint():
    rows = _three_rows()
    checkpoint = Checkpoint(rows[2].pk, rows[2].entry_hash, 3)
    assert verify_chain(checkpoint).ok
    _tamper("DELETE FROM webapp_auditlog WHERE id = %s", rows[2].pk)
    assert verify_chain().ok  # the chain alone cannot tell: its tail is simply shorter
    report = verify_chain(checkpoint)
    assert not report.ok and "tail deleted" in report.reason


def test_an_emptied_table_is_found_against_the_checkpoint():
    rows = _three_rows()
    checkpoint = Checkpoint(rows[2].pk, rows[2].entry_hash, 3)
    _tamper("DELETE FROM webapp_auditlog")
    report = verify_chain(checkpoint)
    assert not report.ok and report.checked == 0 and "gone" in report.reason


def test_a_row_deleted_below_the_checkpoint_and_relinked_is_found_by_the_count():
    rows = _three_rows()
    checkpoint = Checkpoint(rows[2].pk, rows[2].entry_hash, 3)
    _tamper("DELETE FROM webapp_auditlog WHERE id = %s", rows[1].pk)
    report = verify_chain(checkpoint)
    assert not report.ok and report.broken_at == rows[2].pk  # prev_hash no longer matches


def test_the_command_reports_an_intact_chain_and_records_its_verification(capsys):
    _three_rows()
    call_command("verify_audit_chain")
    assert "intact: 3 rows" in capsys.readouterr().out
    row = AuditLog.objects.filter(action=AuditAction.AUDIT_VERIFY).get()
    assert row.detail["ok"] is True and row.detail["checked"] == 3 and row.detail["checkpoint"] is None
