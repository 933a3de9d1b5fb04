"""Every Celery task, thin: the four pipeline stages (load the argument, run the stage function, carry out
its exit from workers.exits) and the beat sweeps.

Workers import this module through the app's `imports`, after Django is set up (workers.celery).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any, NoReturn

from celery import Task
from celery.exceptions import Ignore

from conf.logs import message_context
from contract.pipeline import (
    AUDIT_ARCHIVE_TASK,
    AUDIT_VERIFY_TASK,
    BEAT_QUEUE,
    DELIVER,
    POSTPROCESS,
    PREPROCESS,
    REMINDER_SWEEP_TASK,
    RETENTION_TASK,
    RUN_SKILL,
    Stage,
)
from webapp.actions.audit_archive import do_archive_audit, do_verify_audit_chain
from webapp.actions.dataflow import do_record_exception
from webapp.actions.deadletters import do_dead_letter
from webapp.actions.retention import do_apply_retention
from workers import busy, metrics, reminders, skill_queues, timeline
from workers.celery import app
from workers.errors import DuplicateMessage, PoisonMessage
from workers.exits import STORE_OUTAGES, Attempt, Exit, ExitKind, RetryPolicy, exit_for
from workers.payload import COUNTERS, Order, StagePayload
from workers.resources import current
from workers.stages import deliver, postprocess, preprocess, run_skill
from workers.state import ordering, session

log = logging.getLogger("workers.tasks")

# Retries carry new args; keep user text out of the message headers (see pipeline.signature).
QUIET_ARGS = {"argsrepr": "(<payload>,)", "kwargsrepr": "{}"}
# Celery renders every task's return value (the whole payload) into its task-succeeded event and
# log line: ~10 % of a worker's CPU at 1024 characters, and user text in Flower. Every payload
# starts with its msg_id, which is all a monitor needs.
RESULT_REPR_CHARS = 48


def load_payload(data: Any) -> StagePayload:
    """A stage payload from the task argument; one that is not a payload is poison."""
    try:
        return StagePayload.from_dict(data)
    except ValueError as exc:
        raise PoisonMessage(str(exc)) from exc


def load_envelope(data: Any) -> dict[str, Any]:
    """preprocess's argument: the envelope, without the re-queue counters a retry added to it."""
    if not isinstance(data, dict):
        raise PoisonMessage(f"an envelope is a JSON object, not {type(data).__name__}")
    return {k: v for k, v in data.items() if k not in COUNTERS}


def msg_id_of(data: Any) -> str:
    if isinstance(data, dict):
        turn = data.get("turn")
        return str(data.get("msg_id") or (turn.get("msg_id") if isinstance(turn, dict) else "") or "-")
    return "-"


def log_context_of(data: Any) -> tuple[str, str]:
    """(conversation, tenant) of a task argument for its log lines: an envelope or a payload's turn."""
    if not isinstance(data, dict):
        return "-", "-"
    turn = data.get("turn")
    source = turn if isinstance(turn, dict) else data
    return str(source.get("conversation_id") or "-"), str(source.get("tenant_id") or "-")


def dead_letter(task: Task, stage: Stage, data: Any, error: str) -> NoReturn:
    """Park the message for replay and stop the chain; if even that fails, retry later."""
    msg_id = msg_id_of(data)
    if isinstance(data, dict):
        ordering.finish(msg_id, Order.from_dict(data.get("order")))  # given up: the next message may go
    try:
        letter = do_dead_letter(msg_id, stage.name, data if isinstance(data, dict) else {"raw": data}, error)
    except Exception as exc:
        log.exception("could not write the dead letter; payload=%s",
                      json.dumps(data, ensure_ascii=False, default=str)[:4000])
        policy = RetryPolicy.from_settings(current().settings)
        if task.request.retries < policy.max_retries:
            raise task.retry(countdown=policy.countdown(task.request.retries), max_retries=None) from exc
        raise Ignore() from exc
    log.error("dead-lettered (#%s): %s", letter.pk, error)
    metrics.count_message("dead_letter")
    raise Ignore()


def record_exception(msg_id: str, stage: Stage, exc: Exception) -> None:
    """The failure's audit row (a dead letter writes its own); the answer does not wait on it."""
    try:
        do_record_exception(msg_id, stage.name, exc, outcome="apology")
    except Exception:
        log.exception("could not write the exception's audit row")


def carry_out(task: Task, stage: Stage, exit: Exit, exc: Exception, data: Any,
              payload: StagePayload | None) -> dict[str, Any]:
    """Do what the exit says with Celery; only the apology returns (run_skill's answer)."""
    if exit.log_message:
        log.log(exit.log_level, "%s", exit.log_message, exc_info=exc if exit.traceback else None)
    if exit.kind is ExitKind.STOP:
        if isinstance(exc, DuplicateMessage):
            metrics.count_message("duplicate")
        raise Ignore() from exc
    if exit.kind is ExitKind.REQUEUE:
        raise task.retry(args=(exit.args,), countdown=exit.countdown, max_retries=None, **QUIET_ARGS)
    if exit.kind is ExitKind.RETRY:
        raise task.retry(exc=exc, countdown=exit.countdown, max_retries=None)
    if exit.kind is ExitKind.APOLOGY and payload is not None:
        record_exception(payload.msg_id, stage, exc)
        return run_skill.with_apology(payload, exit.reason).to_dict()
    dead_letter(task, stage, data, exit.reason or f"{type(exc).__name__}: {exc}")


def pipeline_task(stage: Stage, load: Callable[[Any], Any] = load_payload) -> Callable[[Callable[..., Any]], Task]:
    """Register a stage as a task with its constant name, queue and time limit: `load` turns the
    message's argument into the stage function's, a StagePayload result goes out as its dict,
    and any error leaves by its exit in workers.exits."""

    def decorate(fn: Callable[..., Any]) -> Task:
        @app.task(
            name=stage.task,
            time_limit=stage.time_limit,
            soft_time_limit=max(1, stage.time_limit - 5),
            bind=True,
            acks_late=True,
            max_retries=None,  # bounded by TASK_MAX_RETRIES in workers.exits, then dead-lettered
            resultrepr_maxsize=RESULT_REPR_CHARS,
        )
        @functools.wraps(fn)
        def task(self: Task, data: Any) -> Any:
            # The stage's start and end ride in the payload (workers.timeline), written once at the end:
            # stamped into the argument before it is read (a retry re-sends it, keeping the first start).
            tries, worker = self.request.retries + 1, timeline.worker_name(self.request.hostname)
            started = timeline.begin(data, stage.name, tries, worker)
            result = timeline.end(guarded(self, data), stage.name, started, tries, worker)
            metrics.stage_done(stage.name, started, data, result)
            return result

        def guarded(self: Task, data: Any) -> Any:
            with message_context(msg_id_of(data), stage.name, *log_context_of(data)):
                loaded = None
                try:
                    loaded = load(data)
                    result = fn(self, loaded)
                    return result.to_dict() if isinstance(result, StagePayload) else result
                except Exception as exc:  # the one broad except: every kind has its exit
                    attempt = Attempt(stage, data if isinstance(data, dict) else {}, self.request.retries,
                                      RetryPolicy.from_settings(current().settings))
                    payload = loaded if isinstance(loaded, StagePayload) else None
                    return carry_out(self, stage, exit_for(exc, attempt), exc, data, payload)

        return task

    return decorate


@pipeline_task(PREPROCESS, load=load_envelope)
def preprocess_task(task: Task, envelope: dict[str, Any]) -> StagePayload:
    # The task id is the pipeline run id: a redelivered copy of this task passes its own claim.
    payload = preprocess.preprocess(envelope, run_id=str(task.request.id))
    # run_skill goes to the queue of the skill's kind (io: a threads pool of tens; cpu: prefork).
    skill_queues.steer(task.request.chain, payload)
    busy.check(payload)
    return payload


@pipeline_task(RUN_SKILL)
def run_skill_task(task: Task, payload: StagePayload) -> StagePayload:
    # Earlier messages of the conversation first; then the session as they left it.
    ordering.admit(payload.msg_id, payload.order, RUN_SKILL.name)
    return run_skill.run_skill(session.refresh_history(payload))


@pipeline_task(POSTPROCESS)
def postprocess_task(task: Task, payload: StagePayload) -> StagePayload:
    ordering.touch(payload.msg_id, payload.order)  # still moving: later messages keep waiting
    return postprocess.postprocess(payload)


@pipeline_task(DELIVER)
def deliver_task(task: Task, payload: StagePayload) -> dict[str, Any]:
    ordering.admit(payload.msg_id, payload.order, DELIVER.name)
    result = deliver.deliver(payload)
    if result["result"] != "concurrent":  # the concurrent run finishes it
        ordering.finish(payload.msg_id, payload.order)
    return result


# --- beat-driven sweeps on the beat queue (dtbot.reminders); beat sends them by name --------------

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
@app.task(name=REMINDER_SWEEP_TASK, queue=BEAT_QUEUE, time_limit=60, soft_time_limit=50,
          acks_late=False, ignore_result=True)
def sweep_task() -> dict[str, int]:
    # Due rows stay due (or undelivered) when skipped; the next tick picks them up.
    return _sweep("reminders", reminders.sweep)


@app.task(name=RETENTION_TASK, queue=BEAT_QUEUE, time_limit=600, soft_time_limit=570,
          acks_late=False, ignore_result=True)
def retention_task() -> dict[str, int]:
    # Idempotent: what a skipped or lost run would delete, the next day's run deletes.
    return _sweep("retention", do_apply_retention)


# The audit trail's daily jobs; their results are audit rows (the web role's metrics read them).
@app.task(name=AUDIT_ARCHIVE_TASK, queue=BEAT_QUEUE, time_limit=1800, soft_time_limit=1770,
          acks_late=False, ignore_result=True)
def audit_archive_task() -> dict[str, int]:
    # What a skipped run would export, the next one exports (it starts at the last checkpoint).
    return _sweep("audit-archive", lambda: {"archived": int(do_archive_audit().get("archived", 0))})


@app.task(name=AUDIT_VERIFY_TASK, queue=BEAT_QUEUE, time_limit=1800, soft_time_limit=1770,
          acks_late=False, ignore_result=True)
def audit_verify_task() -> dict[str, int]:
    return _sweep("audit-verify", lambda: {"checked": do_verify_audit_chain().checked})
