"""The audit log is insert-only and hash-chained: tampering is refused or detected."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from testkit.personas import bob, mallory
from webapp.actions.audit import record_audit, verify_chain
from webapp.models import AuditLog

pytestmark = pytest.mark.django_db


def _three_rows() -> list[AuditLog]:
    return [
        record_audit(actor=bob.key, action="skill.update", target_type="skill", target_id="echo",
                     before={"enabled": True}, after={"enabled": False}),
        record_audit(actor="system", action="user.export", target_id="staff1", detail={"rows": 3}),
        record_audit(actor="ops", action="setting.update", before=None, after={"v": "温度 0.2"}),
    ]


def test_each_row_links_to_the_previous_one():
    rows = _three_rows()
    assert rows[0].prev_hash == AuditLog.GENESIS
    assert rows[1].prev_hash == rows[0].entry_hash
    assert rows[2].prev_hash == rows[1].entry_hash
    assert verify_chain().ok and verify_chain().checked == 3


def test_the_orm_refuses_updates_and_deletes():
    row = _three_rows()[0]
    row.actor = mallory.key  # someone rewriting history
    with pytest.raises(PermissionError):
        row.save()
    with pytest.raises(PermissionError):
        row.delete()
    with pytest.raises(PermissionError):
        AuditLog.objects.all().delete()


def test_the_database_refuses_updates_and_deletes_behind_the_orm():
    row = _three_rows()[0]
    for sql in ("UPDATE webapp_auditlog SET actor = 'mallory' WHERE id = %s",
                "DELETE FROM webapp_auditlog WHERE id = %s"):
        with pytest.raises(DatabaseError, match="insert-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [row.pk])


def test_verification_finds_a_row_changed_with_the_trigger_disabled():
    rows = _three_rows()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE webapp_auditlog DISABLE TRIGGER webapp_auditlog_no_update_delete")
        cursor.execute("UPDATE webapp_auditlog SET after = '{\"enabled\": true}' WHERE id = %s", [rows[0].pk])
        cursor.execute("ALTER TABLE webapp_auditlog ENABLE TRIGGER webapp_auditlog_no_update_delete")
    report = verify_chain()
    assert not report.ok and report.broken_at == rows[0].pk
    with pytest.raises(CommandError, match="broken at row"):
        call_command("verify_audit_chain")


def test_the_command_reports_an_intact_chain(capsys):
    _three_rows()
    call_command("verify_audit_chain")
    assert "intact: 3 rows" in capsys.readouterr().out
