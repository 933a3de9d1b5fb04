"""The one declared chain: preprocess | run_skill | postprocess | deliver, each on its own queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery.canvas import Signature, chain

from workers.celery import app


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: its task name (a wire contract), queue and time limit."""

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
STAGE_BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}

# Routes by task name, so retries and replays land on the stage's queue too.
app.conf.task_routes = {s.task: {"queue": s.queue, "routing_key": s.queue} for s in STAGES}


def signature(stage: Stage, *args: Any) -> Signature:
    """A signature of one stage, routed to its queue.

    argsrepr is fixed: Celery would otherwise render the whole payload (user text) into the
    message headers, events and logs at every stage.
    """
    return app.signature(
        stage.task, args=args, queue=stage.queue, immutable=False,
        argsrepr="(<payload>,)", kwargsrepr="{}",
    )


def chain_from(stage_name: str, payload: dict[str, Any]) -> Signature:
    """The rest of the pipeline starting at `stage_name` with `payload` (used by replays)."""
    idx = [s.name for s in STAGES].index(stage_name)
    first, *rest = STAGES[idx:]
    sigs = [signature(first, payload)] + [signature(s) for s in rest]
    return chain(*sigs) if len(sigs) > 1 else sigs[0]


def build_chain(envelope: dict[str, Any]) -> Signature:
    """The full pipeline for one envelope (a dict of JSON primitives)."""
    return chain_from(PREPROCESS.name, envelope)
