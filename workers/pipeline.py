"""The one declared chain: preprocess | run_skill | postprocess | deliver, from the shared contract."""

from __future__ import annotations

from typing import Any

from celery.canvas import Signature, chain

from contract.pipeline import ARGSREPR, PREPROCESS, Stage, stages_from
from workers.celery import app


def signature(stage: Stage, *args: Any) -> Signature:
    """A signature of one stage, routed to its queue (argsrepr fixed: no user text in headers)."""
    return app.signature(
        stage.task, args=args, queue=stage.queue, immutable=False,
        argsrepr=ARGSREPR, kwargsrepr="{}",
    )


def chain_from(stage_name: str, payload: dict[str, Any]) -> Signature:
    """The rest of the pipeline starting at `stage_name` with `payload` (used by replays)."""
    first, *rest = stages_from(stage_name)
    sigs = [signature(first, payload)] + [signature(s) for s in rest]
    return chain(*sigs) if len(sigs) > 1 else sigs[0]


def build_chain(envelope: dict[str, Any]) -> Signature:
    """The full pipeline for one envelope (a dict of JSON primitives)."""
    return chain_from(PREPROCESS.name, envelope)
