"""The processes that run export, erasure and retention register the workers' per-user stores
themselves: manage.py (the commands' composition root) and a worker (its Django set-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from contract.pipeline import BEAT_QUEUE, RETENTION_TASK
from testkit import processes
from testkit.personas import alice
from webapp.clients import publisher
from webapp.models import AuditLog
from workers.state import session
from workers.state.media_store import MediaStore

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

T = "corp-proc"


@pytest.fixture
def env(worker_settings, media_root, celery_broker) -> dict[str, str]:
    from django.db import connection

    db = connection.settings_dict
    return processes.worker_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_KEY_PREFIX=worker_settings.redis_key_prefix, MEDIA_ROOT=str(media_root),
        CELERY_BROKER_URL=celery_broker, MEDIA_RETENTION_DAYS="7",
    )


def test_manage_py_export_user_covers_the_workers_stores(env):
    session.append_turn(T, "cid-a", alice.staff_id, [{"role": "user", "text": "alice private"}], "1")
    out = subprocess.run([sys.executable, "manage.py", "export_user", alice.staff_id, "--tenant", T],
                         cwd=processes.ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [e["text"] for s in data["redis"]["sessions"] for e in s["entries"]] == ["alice private"]
    assert data["media"] == [] and data["redis"]["buttons"] == []


def test_the_retention_task_in_a_worker_purges_old_media(env, media_root):
    ref = MediaStore(media_root).save([b"old bytes"], tenant_id=T, user_id=alice.staff_id, msg_id="m-old", index=0,
                                      kind="file", name="a.txt", content_type="text/plain")
    stamp = time.time() - 8 * 86400
    os.utime(ref["path"], (stamp, stamp))
    worker = processes.start_worker(env, (BEAT_QUEUE,), pool="threads", concurrency=1)
    try:
        publisher().send_task(RETENTION_TASK, queue=BEAT_QUEUE)
        deadline = time.monotonic() + 30
        while not AuditLog.objects.filter(action="retention.purge").exists():
            assert time.monotonic() < deadline, worker.log_text()[-3000:]
            time.sleep(0.2)
    finally:
        processes.stop(worker)
    assert AuditLog.objects.get(action="retention.purge").detail["media_files"] == 1
    assert not os.path.exists(ref["path"])
