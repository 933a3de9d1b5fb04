"""The pipeline's wire contract: task and queue names, time limits, and the chain's order.

The listener, the workers and the webapp import this module (never each other) to publish and
consume the same messages. Names here are a wire contract: renaming one strands queued messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: its task name, queue and time limit."""

    name: str
    task: str
    queue: str
    time_limit: int


# Later stages have their own queues so continuations never wait behind a backlog of new messages.
PREPROCESS = Stage("preprocess", "dtbot.pipeline.preprocess", "dtbot.preprocess", 30)
RUN_SKILL = Stage("run_skill", "dtbot.pipeline.run_skill", "dtbot.skills", 120)
POSTPROCESS = Stage("postprocess", "dtbot.pipeline.postprocess", "dtbot.postprocess", 30)
DELIVER = Stage("deliver", "dtbot.pipeline.deliver", "dtbot.deliver", 60)

STAGES: tuple[Stage, ...] = (PREPROCESS, RUN_SKILL, POSTPROCESS, DELIVER)

# run_skill has two queues, chosen in preprocess by the routed skill's declared kind: work that
# mostly waits on a server (an LLM stream, a remote skill) goes to the I/O queue, served by a
# threads pool with tens of slots; work that computes (embeddings, parsing) stays on RUN_SKILL's
# own queue, a prefork pool bounded by the cores. The CPU queue keeps the old name, so messages
# queued before an upgrade are still consumed.
SKILLS_CPU_QUEUE = RUN_SKILL.queue
SKILLS_IO_QUEUE = "dtbot.skills.io"
SKILL_QUEUE_BY_KIND: dict[str, str] = {"cpu": SKILLS_CPU_QUEUE, "io": SKILLS_IO_QUEUE}
STAGE_BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}

# Beat-driven sweeps share one queue, consumed by worker-pipeline; beat sends them by name.
BEAT_QUEUE = "dtbot.reminders"
REMINDER_SWEEP_TASK = "dtbot.reminders.sweep"
RETENTION_TASK = "dtbot.housekeeping.retention"
# The audit trail's daily jobs: export + checkpoint to the archive, then verify the chain against it.
AUDIT_ARCHIVE_TASK = "dtbot.housekeeping.audit_archive"
AUDIT_VERIFY_TASK = "dtbot.housekeeping.audit_verify"

EXCHANGE = "dtbot"
QUEUE_NAMES: tuple[str, ...] = (*(s.queue for s in STAGES), SKILLS_IO_QUEUE, BEAT_QUEUE)

# Task messages never carry user text in their headers (Celery would render the payload there,
# into events and into logs at every stage).
ARGSREPR = "(<payload>,)"


def signature_fields(stage: Stage) -> dict[str, Any]:
    """One stage as a Celery signature dict (what a task message's `chain` field lists)."""
    return {
        "task": stage.task,
        "args": [],
        "kwargs": {},
        "options": {"queue": stage.queue, "argsrepr": ARGSREPR, "kwargsrepr": "{}"},
        "subtask_type": None,
        "immutable": False,
    }


def stages_from(stage_name: str) -> tuple[Stage, ...]:
    """The stages from `stage_name` to the end (a replay starts at its failed stage)."""
    names = [s.name for s in STAGES]
    return STAGES[names.index(stage_name):]


def chain_field(stage_name: str) -> list[dict[str, Any]]:
    """The `chain` field of the task message that starts the pipeline at `stage_name`: the
    stages after it, last first (Celery pops the next stage off the end)."""
    return [signature_fields(s) for s in reversed(stages_from(stage_name)[1:])]
