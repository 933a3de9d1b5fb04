"""Which skills queue a message's run_skill goes to: by the routed skill's declared kind (io or cpu)."""

from __future__ import annotations

import logging
from typing import Any

from contract.pipeline import RUN_SKILL, SKILL_QUEUE_BY_KIND, SKILLS_CPU_QUEUE, SKILLS_IO_QUEUE
from skills import registry
from workers.payload import StagePayload

log = logging.getLogger(__name__)


def queue_for(payload: StagePayload) -> str:
    """The I/O queue for skills that wait (LLM, remote) and for answers preprocess already knows;
    the CPU queue for skills that compute (embeddings, parsing)."""
    if payload.reply is not None:
        return SKILLS_IO_QUEUE  # nothing to compute: a preset reply only passes through
    name = payload.turn.skill or registry.FALLBACK_SKILL
    if name not in registry.SKILLS:
        return SKILLS_IO_QUEUE  # a remote skill (an admin row): an HTTP call
    try:
        kind = registry.skill_class(name).kind
    except Exception:  # an unimportable skill fails in run_skill, politely; any queue will do
        return SKILLS_CPU_QUEUE
    return SKILL_QUEUE_BY_KIND.get(kind, SKILLS_CPU_QUEUE)


def steer(chain: Any, payload: StagePayload) -> str | None:
    """Point the next step of this task's chain (run_skill) at the skill's queue; the queue, or
    None when the next step is not run_skill (a test chain, a replay from a later stage)."""
    if not chain:
        return None
    step = chain[-1]  # Celery pops the next signature off the end
    if not isinstance(step, dict) or step.get("task") != RUN_SKILL.task:
        return None
    queue = queue_for(payload)
    options = step.setdefault("options", {})
    options["queue"] = queue
    options.pop("routing_key", None)  # the queue's own binding (same name) routes it
    return queue
