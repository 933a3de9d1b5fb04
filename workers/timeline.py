"""Stage stamps carried in a payload's `record.timeline`: when each stage began and ended, on which
worker, after how many tries — written with the record's one update (deliver's status, or the dead
letter), never a database write per stage.

The shape (webapp.timeline reads it): `{"stages": {stage: {"first", "start", "end", "tries",
"worker"}}, "parts": n, "llm": {"first_token_s", "total_s", "chunks", "tokens_in", "tokens_out"}}`,
times in epoch seconds.
`first` is when the stage's first attempt began (a retry keeps it, a replay starts afresh), `start`
when the attempt that finished began. A stage's end is the next stage's queue start, so the
segments of one message add up to its end-to-end time by construction.
"""

from __future__ import annotations

import os
import time
from typing import Any

TIMELINE = "timeline"


def worker_name(hostname: str | None) -> str:
    """The Celery node and the process that ran the stage (prefork children differ by pid)."""
    return f"{hostname or '-'}/{os.getpid()}"


def _stages(record: dict[str, Any]) -> dict[str, Any]:
    timeline = record.get(TIMELINE)
    if not isinstance(timeline, dict):
        timeline = record[TIMELINE] = {}
    stages = timeline.get("stages")
    if not isinstance(stages, dict):
        stages = timeline["stages"] = {}
    return stages


def begin(payload: Any, stage: str, tries: int, worker: str, now: float | None = None) -> float:
    """Stamp the stage's start into the payload, in place: a retry of this task message re-sends the
    same argument, so its stamp keeps the first attempt's start. An envelope (preprocess's input) is
    left alone: it has no record yet, and its fields are a contract. Returns the start time."""
    now = time.time() if now is None else now
    if not isinstance(payload, dict) or "turn" not in payload:
        return now
    record = payload.get("record")
    if not isinstance(record, dict):
        record = payload["record"] = {}
    stages = _stages(record)
    earlier = stages.get(stage) if tries > 1 else None  # a fresh task message (a replay) starts afresh
    first = earlier.get("first") if isinstance(earlier, dict) else None
    stages[stage] = {"first": first or now, "start": now, "tries": tries, "worker": worker}
    return now


def end(result: Any, stage: str, started: float, tries: int, worker: str, now: float | None = None) -> Any:
    """The stage's result with its end stamped (and how many reply parts it hands on); results that
    are not payloads (deliver's summary) are returned as they are."""
    if not isinstance(result, dict) or not isinstance(result.get("record"), dict):
        return result
    now = time.time() if now is None else now
    record = dict(result["record"])
    record[TIMELINE] = dict(record.get(TIMELINE) or {})
    stages = record[TIMELINE]["stages"] = dict(_stages(record))
    entry = dict(stages.get(stage) or {"first": started, "start": started, "tries": tries, "worker": worker})
    entry["end"] = now
    stages[stage] = entry
    if isinstance(result.get("replies"), list) and result["replies"]:
        record[TIMELINE]["parts"] = len(result["replies"])
    return {**result, "record": record}


def note(record: Any, **facts: Any) -> dict[str, Any]:
    """A copy of `record` whose timeline also carries `facts` (e.g. llm timings)."""
    out = dict(record) if isinstance(record, dict) else {}
    out[TIMELINE] = {**(out.get(TIMELINE) or {}), **{k: v for k, v in facts.items() if v}}
    return out
