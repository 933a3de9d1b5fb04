"""The beat-driven reminder sweep task (`dtbot.reminders.sweep` on `dtbot.reminders`): a thin wrapper."""

from __future__ import annotations

import logging

from workers.runtime import setup_django

# Workers only, like workers.tasks: beat sends this task by name and never imports it.
setup_django()

from workers import reminders  # noqa: E402
from workers.celery import REMINDER_QUEUE, REMINDER_SWEEP_TASK, app  # noqa: E402
from workers.msglog import message_context  # noqa: E402
from workers.tasks import STORE_OUTAGES  # noqa: E402

log = logging.getLogger("workers.reminder_tasks")


@app.task(
    name=REMINDER_SWEEP_TASK,
    queue=REMINDER_QUEUE,
    time_limit=60,
    soft_time_limit=50,
    # A lost sweep is replaced by the next beat tick; redelivering old ones would only pile up.
    acks_late=False,
    ignore_result=True,
)
def sweep_task() -> dict[str, int]:
    with message_context("-", "reminders"):
        try:
            return reminders.sweep()
        except STORE_OUTAGES as exc:
            # The rows stay due (or undelivered); the next tick picks them up.
            log.warning("reminder sweep skipped, a store is unreachable: %r", exc)
            return {"skipped": 1}
