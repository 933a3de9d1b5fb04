"""The audit archive on a real S3-compatible server (moto's, started here): daily parts read back and compared,
signed checkpoints that catch a deleted tail, retention, restore-and-verify, and the daily jobs' results."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from moto.server import ThreadedMotoServer

from testkit.services import free_port
from webapp.actions.audit import record_audit, verify_chain
from webapp.actions.audit_archive import (
    CHECKPOINTS,
    DAYS,
    do_archive_audit,
    do_verify_audit_chain,
    read_checkpoint,
    restore_and_verify,
)
from webapp.archive_store import ArchiveError, ArchiveStore
from webapp.models import AuditLog
from webapp.models.audit import AuditAction

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC)  # 00:30 China time, 2 March


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def archive(s3_server, resources):
    """A fresh bucket on the server, named by the AUDIT_ARCHIVE_* variables as in production."""
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    resources.set(AUDIT_ARCHIVE_ENDPOINT_URL=s3_server, AUDIT_ARCHIVE_BUCKET=bucket,
                  AUDIT_ARCHIVE_PREFIX="dtbot/audit", AUDIT_ARCHIVE_ACCESS_KEY_ID="test",
                  AUDIT_ARCHIVE_SECRET_ACCESS_KEY="test")
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=bucket)
    store = ArchiveStore.from_settings()
    assert store is not None
    return store


def rows(n: int, start: int = 0) -> list[AuditLog]:
    return [record_audit(actor="bob", action=AuditAction.ADMIN_SETTING_UPDATE, target_id=f"k{start + i}",
                         after={"v": start + i}) for i in range(n)]


def tamper(statement: str, *args) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE webapp_auditlog DISABLE TRIGGER USER")
        cursor.execute(statement, list(args))
        cursor.execute("ALTER TABLE webapp_auditlog ENABLE TRIGGER USER")


def test_a_run_exports_the_rows_as_gzip_json_lines_and_a_signed_checkpoint(archive):
    written = rows(3)
    result = do_archive_audit(now=NOW)
    assert result["archived"] == 3 and result["part"].startswith(f"{DAYS}2026-03-02/rows-")
    assert archive.names("") == [result["checkpoint"], result["part"]]
    raw = archive.client.get_object(Bucket=archive.bucket, Key="dtbot/audit/" + result["part"])
    lines = gzip.decompress(raw["Body"].read()).decode().splitlines()
    assert [json.loads(line)["entry_hash"] for line in lines] == [r.entry_hash for r in written]
    assert raw["Metadata"]["sha256"] == result["part_sha256"]
    checkpoint, body = read_checkpoint(archive.get(result["checkpoint"]))
    assert (checkpoint.last_id, checkpoint.head_hash, checkpoint.count) == (written[-1].pk, written[-1].entry_hash, 3)
    assert body["part_sha256"] == result["part_sha256"]
    row = AuditLog.objects.filter(action=AuditAction.AUDIT_ARCHIVE).get()
    assert row.detail["ok"] is True and row.detail["archived"] == 3


def test_the_next_run_continues_where_the_checkpoint_ended(archive):
    rows(2)
    first = do_archive_audit(now=NOW)
    rows(2, start=2)
    second = do_archive_audit(now=NOW + dt.timedelta(days=1))
    assert second["after_id"] == first["head_id"]
    assert second["archived"] == 3  # two new rows and the first run's own audit.archive row
    assert second["part"].startswith(f"{DAYS}2026-03-03/")
    assert len(archive.names(CHECKPOINTS)) == 2
    assert restore_and_verify().ok


def test_a_tail_deleted_after_the_checkpoint_fails_the_daily_verification(archive, client):
    written = rows(3)
    do_archive_audit(now=NOW)
    assert do_verify_audit_chain().ok
    tamper("DELETE FROM webapp_auditlog WHERE id >= %s", written[1].pk)
    assert verify_chain().ok  # without the checkpoint, a shorter chain looks fine
    report = do_verify_audit_chain()
    assert not report.ok and "tail deleted" in report.reason
    metrics = client.get("/metrics").content.decode()
    assert "dtbot_audit_chain_ok 0.0" in metrics
    with pytest.raises(CommandError, match="tail deleted"):
        call_command("verify_audit_chain")


def test_a_forged_checkpoint_is_refused(archive):
    rows(2)
    result = do_archive_audit(now=NOW)
    body = json.loads(archive.get(result["checkpoint"]))
    body["count"] = 1  # whoever deleted a row would like the checkpoint to agree
    archive.client.put_object(Bucket=archive.bucket, Key="dtbot/audit/" + result["checkpoint"],
                              Body=json.dumps(body).encode())
    report = do_verify_audit_chain()
    assert not report.ok and "not signed" in report.reason


def test_restore_finds_deleted_rows_and_loads_them_back(archive, capsys):
    written = rows(4)
    do_archive_audit(now=NOW)
    tamper("DELETE FROM webapp_auditlog WHERE id IN (%s, %s)", written[1].pk, written[2].pk)
    assert not verify_chain().ok
    report = restore_and_verify()
    assert report.missing_in_db == [written[1].pk, written[2].pk] and not report.ok
    with pytest.raises(CommandError, match="do not agree"):
        call_command("restore_audit_archive")
    assert "missing from the database" in capsys.readouterr().err
    call_command("restore_audit_archive", "--load")
    assert "loaded 2" in capsys.readouterr().out
    assert verify_chain().ok
    assert AuditLog.objects.filter(action=AuditAction.AUDIT_RESTORE).get().detail["loaded"] == 2
    rows(1)  # the id sequence goes on after the restored rows
    assert verify_chain().ok


def test_restore_finds_a_changed_part_and_a_changed_row(archive):
    written = rows(2)
    result = do_archive_audit(now=NOW)
    tamper("UPDATE webapp_auditlog SET entry_hash = repeat('a', 64) WHERE id = %s", written[0].pk)
    assert restore_and_verify().different_in_db == [written[0].pk]
    archive.client.put_object(Bucket=archive.bucket, Key="dtbot/audit/" + result["part"],
                              Body=gzip.compress(b'{"id": 1}\n'))
    assert any("SHA-256" in p for p in restore_and_verify().problems)


def test_parts_past_retention_are_deleted_and_checkpoints_kept(archive, resources):
    resources.set(AUDIT_RETENTION_DAYS="200")
    rows(1)
    first = do_archive_audit(now=NOW)
    rows(1)
    assert do_archive_audit(now=NOW + dt.timedelta(days=199))["expired"] == 0
    rows(1)
    late = do_archive_audit(now=NOW + dt.timedelta(days=201))
    assert late["expired"] == 1 and first["part"] not in archive.names(DAYS)
    assert len(archive.names(CHECKPOINTS)) == 3
    assert restore_and_verify().ok  # what is left still verifies from its first part


def test_retention_below_six_months_is_refused():
    from conf.settings import load

    with pytest.raises(ValueError, match="at least 180"):
        load({"AUDIT_RETENTION_DAYS": "90"})


def test_without_a_bucket_the_run_says_so():
    assert do_archive_audit(now=NOW)["skipped"] == "AUDIT_ARCHIVE_BUCKET is not set"


def test_an_unreachable_archive_fails_loudly_and_leaves_a_row(resources):
    resources.set(AUDIT_ARCHIVE_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", AUDIT_ARCHIVE_BUCKET="nowhere",
                  AUDIT_ARCHIVE_ACCESS_KEY_ID="test", AUDIT_ARCHIVE_SECRET_ACCESS_KEY="test")
    rows(1)
    with pytest.raises(ArchiveError, match="cannot"):
        do_archive_audit(now=NOW)
    failed = AuditLog.objects.filter(action=AuditAction.AUDIT_ARCHIVE).get()
    assert failed.detail["ok"] is False
    report = do_verify_audit_chain()  # the chain is fine, but its checkpoint cannot be read
    assert not report.ok and "cannot" in report.reason


def test_beat_runs_archive_then_verification_daily():
    from celery.schedules import crontab

    from contract.pipeline import AUDIT_ARCHIVE_TASK, AUDIT_VERIFY_TASK
    from workers.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    archive_at, verify_at = schedule[AUDIT_ARCHIVE_TASK], schedule[AUDIT_VERIFY_TASK]
    assert isinstance(archive_at, crontab) and isinstance(verify_at, crontab)
    assert archive_at.hour == verify_at.hour == {0} and min(archive_at.minute) < min(verify_at.minute)
