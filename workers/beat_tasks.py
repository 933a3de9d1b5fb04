"""Beat-driven periodic tasks on the beat queue (`dtbot.reminders`): reminder sweep, daily retention."""

from __future__ import annotations

import logging
from typing import Callable

from workers.runtime import setup_django

# Workers only, like workers.tasks: beat sends these tasks by name and never imports them.
setup_django()

from webapp.actions.retention import do_apply_retention  # noqa: E402
from workers import reminders  # noqa: E402
from workers.celery import REMINDER_QUEUE, REMINDER_SWEEP_TASK, RETENTION_TASK, app  # noqa: E402
from workers.msglog import message_context  # noqa: E402
from workers.tasks import STORE_OUTAGES  # noqa: E402

log = logging.getLogger("workers.beat_tasks")


def _sweep(what: str, work: Callable[[], dict[str, int]]) -> dict[str, int]:
    """Run one periodic sweep; a store outage skips it (the next tick does the same work)."""
    with message_context("-", what):
        try:
            counts = work()
        except STORE_OUTAGES as exc:
            log.warning("%s sweep skipped, a store is unreachable: %r", what, exc)
            return {"skipped": 1}
        if any(counts.values()):
            log.info("%s sweep: %s", what, counts)
        return counts


# A lost sweep is replaced by the next beat tick; redelivering old ones would only pile up.
@app.task(name=REMINDER_SWEEP_TASK, queue=REMINDER_QUEUE, time_limit=60, soft_time_limit=50,
          acks_late=False, ignore_result=True)
def sweep_task() -> dict[str, int]:
    # Due rows stay due (or undelivered) when skipped; the next tick picks them up.
    return _sweep("reminders", reminders.sweep)


@app.task(name=RETENTION_TASK, queue=REMINDER_QUEUE, time_limit=600, soft_time_limit=570,
          acks_late=False, ignore_result=True)
def retention_task() -> dict[str, int]:
    # Idempotent: what a skipped or lost run would delete, the next day's run deletes.
    return _sweep("retention", do_apply_retention)
