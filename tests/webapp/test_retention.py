"""Retention: the daily sweep deletes old routed-turn text and old media, keeps the rest, audits counts."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from testkit.personas import alice
from webapp.actions.retention import DAY, do_apply_retention
from webapp.actions.routing import do_log_routed_turn
from webapp.models import AuditLog, RoutedTurn
from workers.state.media_store import MediaStore

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(tmp_path, resources, personal_data_stores) -> MediaStore:
    resources.set(MEDIA_ROOT=str(tmp_path), MEDIA_RETENTION_DAYS="7")
    return MediaStore(tmp_path)


def saved(store: MediaStore, msg_id: str, age_days: float) -> str:
    ref = store.save([b"%PDF-1.4 ..."], tenant_id="corp1", user_id=alice.user_id, msg_id=msg_id, index=0,
                     kind="file", name="a.pdf", content_type="application/pdf")
    stamp = time.time() - age_days * DAY
    os.utime(ref["path"], (stamp, stamp))
    return ref["path"]


def test_old_turns_and_files_go_recent_ones_stay_and_the_purge_is_audited(store):
    for msg_id in ("old", "new"):
        do_log_routed_turn(msg_id=msg_id, tenant_id="corp1", user_id=alice.user_id, text="年假怎么申请",
                           predicted_intent="docsearch.ask", confidence=0.9, skill="docsearch")
    RoutedTurn.objects.filter(msg_id="old").update(created_at=timezone.now() - timedelta(days=31))
    old_file, new_file = saved(store, "m-old", 8), saved(store, "m-new", 6)

    assert do_apply_retention() == {"routed_turns": 1, "message_records": 0, "media_files": 1}

    assert list(RoutedTurn.objects.values_list("msg_id", flat=True)) == ["new"]
    assert not os.path.exists(old_file) and not os.path.exists(old_file[:-4] + ".json")
    assert os.path.exists(new_file) and len(store.list_user("corp1", alice.user_id)) == 1
    row = AuditLog.objects.get(action="retention.purge")
    assert row.detail["media_files"] == 1 and row.detail["media_days"] == 7
    assert "年假" not in str(row.detail)  # counts only, never the purged text


def test_a_sweep_with_nothing_to_delete_writes_no_audit_row(store):
    saved(store, "m-new", 1)
    assert do_apply_retention() == {"routed_turns": 0, "message_records": 0, "media_files": 0}
    assert not AuditLog.objects.filter(action="retention.purge").exists()


def test_an_interrupted_download_left_behind_is_swept_but_not_counted(store):
    folder = store.user_dir("corp1", alice.user_id)
    folder.mkdir(parents=True)
    part = folder / ".part-abc"
    part.write_bytes(b"half")
    stamp = time.time() - 30 * DAY
    os.utime(part, (stamp, stamp))
    assert store.purge_older_than(time.time() - DAY) == 0
    assert not part.exists()


def test_beat_runs_the_sweep_daily_on_the_beat_queue():
    import workers.tasks  # noqa: F401  (registers the task)
    from contract.pipeline import BEAT_QUEUE, RETENTION_TASK
    from workers.celery import app

    entry = next(e for e in app.conf.beat_schedule.values() if e["task"] == RETENTION_TASK)
    assert entry["options"]["queue"] == BEAT_QUEUE
    assert RETENTION_TASK in app.tasks
    assert entry["schedule"].remaining_estimate(timezone.now()) <= timedelta(days=1)


def test_the_sweep_refuses_when_no_media_store_is_registered(store, personal_data_stores):
    from webapp.actions.personal_data import MEDIA, MissingStore

    old_file = saved(store, "m-old", 30)
    personal_data_stores.unregister(MEDIA)
    with pytest.raises(MissingStore, match="media"):
        do_apply_retention()
    assert os.path.exists(old_file)
    assert not AuditLog.objects.filter(action="retention.purge").exists()


def test_message_records_older_than_their_retention_go_with_the_daily_sweep(store):
    from webapp.models import MessageRecord

    for msg_id in ("rec-old", "rec-new"):
        MessageRecord.objects.create(msg_id=msg_id, tenant_id="corp1", status="replied")
    MessageRecord.objects.filter(msg_id="rec-old").update(created_at=timezone.now() - timedelta(days=91))
    counts = do_apply_retention()
    assert counts["message_records"] == 1
    assert list(MessageRecord.objects.values_list("msg_id", flat=True)) == ["rec-new"]
    row = AuditLog.objects.get(action="retention.purge")
    assert row.detail["message_records"] == 1 and row.detail["message_record_days"] == 90
