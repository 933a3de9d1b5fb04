"""Audit chain throughput: appends per second with concurrent writers (the chain lock serialises them), the
data-flow row's cost inside deliver's final status write, and verification speed. Prints JSON.

    .venv/bin/python bench/audit_chain.py [--rows 2000] [--writers 4]

Runs in a database of its own (dtbot_bench_audit), never the developer's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pipeline import prepare_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = prepare_database("dtbot_bench_audit")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.db import connection, connections

    from webapp.actions.audit import record_audit, verify_chain
    from webapp.actions.records import MessageStatus, do_mark_status
    from webapp.models import MessageRecord
    from webapp.models.audit import AuditAction

    def write(n: int) -> None:
        for i in range(n):
            record_audit(actor="bench", action=AuditAction.ADMIN_SETTING_UPDATE, target_id=str(i), after={"i": i})
        connections.close_all()

    per = args.rows // args.writers
    started = time.perf_counter()
    threads = [threading.Thread(target=write, args=(per,)) for _ in range(args.writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    append_s = time.perf_counter() - started

    ids = [f"bench-{time.time_ns()}-{i}" for i in range(500)]
    MessageRecord.objects.bulk_create([MessageRecord(msg_id=m, tenant_id="t", status="processing") for m in ids])
    started = time.perf_counter()
    for m in ids[:250]:
        do_mark_status(m, MessageStatus.PROCESSING, skill="echo")  # not final: the UPDATE alone
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    for m in ids[250:]:
        do_mark_status(m, MessageStatus.REPLIED, channel="webhook", skill="echo", recipients=["llm:x"],
                       personal_data=["mobile"])
    final_s = time.perf_counter() - started

    started = time.perf_counter()
    report = verify_chain()
    verify_s = time.perf_counter() - started
    connection.close()
    print(json.dumps({
        "writers": args.writers,
        "appends_per_s": round(per * args.writers / append_s),
        "status_update_ms": round(plain_s / 250 * 1000, 2),
        "final_status_with_data_flow_row_ms": round(final_s / 250 * 1000, 2),
        "verify_rows": report.checked,
        "verify_rows_per_s": round(report.checked / verify_s),
        "chain_ok": report.ok,
    }))


if __name__ == "__main__":
    main()
