"""Beat-driven housekeeping (`dtbot.housekeeping.retention` on the beat queue): a thin wrapper."""

from __future__ import annotations

import logging

from workers.runtime import setup_django

# Workers only, like workers.tasks: beat sends this task by name and never imports it.
setup_django()

from webapp.actions.retention import do_apply_retention  # noqa: E402
from workers.celery import REMINDER_QUEUE, RETENTION_TASK, app  # noqa: E402
from workers.msglog import message_context  # noqa: E402
from workers.tasks import STORE_OUTAGES  # noqa: E402

log = logging.getLogger("workers.housekeeping_tasks")


@app.task(
    name=RETENTION_TASK,
    queue=REMINDER_QUEUE,
    time_limit=600,
    soft_time_limit=570,
    # Idempotent and daily: a lost run is done by the next one.
    acks_late=False,
    ignore_result=True,
)
def retention_task() -> dict[str, int]:
    with message_context("-", "retention"):
        try:
            counts = do_apply_retention()
        except STORE_OUTAGES as exc:
            log.warning("retention sweep skipped, a store is unreachable: %r", exc)
            return {"skipped": 1}
        log.info("retention sweep: %s", counts)
        return counts
