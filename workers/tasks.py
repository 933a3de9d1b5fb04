"""Every Celery task, thin: the four pipeline stages (load the argument, run the stage function, carry out
its exit from workers.exits) and the beat sweeps.

Workers import this module through the app's `imports`, after Django is set up (workers.celery).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn

from celery import Task, signature
from celery.exceptions import Ignore, Reject
from kombu.exceptions import LimitExceeded

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
from workers.confirms import CONFIRM_OPTIONS, confirmed_producer
from workers.errors import DuplicateMessage, PoisonMessage
from workers.exits import STORE_OUTAGES, Attempt, Exit, ExitKind, RetryPolicy, exit_for
from workers.payload import COUNTERS, Order, StagePayload
from workers.resources import current
from workers.stages import deliver, postprocess, preprocess, run_skill
from workers.state import ordering, session

log = logging.getLogger("workers.tasks")

# The key a stage's argument carries while its dead letter waits for the store ({"stage", "error"}).
PARKED = "dead_letter_pending"
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
    return {k: v for k, v in data.items() if k not in COUNTERS and k != PARKED}


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


def order_of(data: Any) -> Order | None:
    """The message's place in its conversation's line: the payload's, or (preprocess's envelope,
    which registered itself first) the line of its tenant and conversation."""
    if not isinstance(data, dict):
        return None
    order = Order.from_dict(data.get("order"))
    if order is None and data.get("conversation_id") and "turn" not in data:
        order = Order(str(data.get("tenant_id") or ""), str(data["conversation_id"]), 0.0)
    return order


def _best_effort(what: str, action: Callable[[], object]) -> None:
    """A turnstile bookkeeping step that must not fail the message (its entry expires anyway)."""
    try:
        action()
    except Exception as exc:
        log.warning("could not %s: %r (the entry expires by itself)", what, exc)


def publish_again(task: Task, **retry: Any) -> NoReturn:
    """task.retry, except that a retry the broker did not take leaves this run un-acked.

    Celery turns a failed retry publish into Reject(requeue=False): the message would be gone.
    Here it goes back to its queue instead (after a pause, so an unroutable queue is no hot loop).
    """
    try:
        with confirmed_producer(task.app) as producer:
            # throw=False: the Retry is raised below, outside the producer's hold (an exception
            # inside it means a failed publish and drops the producer's connection).
            again = task.retry(producer=producer, throw=False, **CONFIRM_OPTIONS, **retry)
    except (Reject, LimitExceeded) as exc:  # Celery's Reject for a failed publish, or no free producer
        reason = exc.reason if isinstance(exc, Reject) else exc
        log.warning("could not publish the retry (%r); the message goes back to its queue", reason)
        time.sleep(RetryPolicy.from_settings(current().settings).backoff_seconds)
        raise Reject(reason, requeue=True) from exc
    raise again


def hand_on(task: Task, result: Any) -> None:
    """Publish the chain's next stage with this stage's result, confirmed, before this run is acked.

    Celery would publish it after the task returned and ack the message even when that publish
    failed (the failure counts as the task's own): the message would be lost between stages. Here a
    failed hand-off leaves this stage un-acked (back to its queue), so it runs again.
    """
    chain = task.request.chain
    if not chain or getattr(task.request, "is_eager", False):
        return
    rest = list(chain)
    successor = signature(rest.pop(), app=app)  # Celery's order: the next stage is the last item
    msg_id = msg_id_of(result)
    order = order_of(result)
    if order is not None:
        # From now on it waits in a queue: those behind it keep waiting however long the backlog is.
        _best_effort("mark the message queued", lambda: ordering.queued(msg_id, order))
    try:
        with confirmed_producer(task.app) as producer:
            successor.apply_async((result,), chain=rest or None, parent_id=task.request.id,
                                  root_id=task.request.root_id or task.request.id,
                                  producer=producer, **CONFIRM_OPTIONS)
    except Exception as exc:
        log.warning("could not hand on to %s (%r); this stage goes back to its queue", successor.task, exc)
        time.sleep(RetryPolicy.from_settings(current().settings).backoff_seconds)
        raise Reject(exc, requeue=True) from exc
    task.request.chain = None  # handed on: Celery must not publish it a second time


def count_delivery(task: Task) -> int:
    """How many earlier deliveries of this task message started and never finished (their worker
    died: OOM, segfault, hard time limit). Only redelivered messages are counted (no Redis call
    on a first delivery); an outage of Redis counts nothing (the run goes on)."""
    info = task.request.delivery_info or {}
    if not info.get("redelivered"):
        return 0
    res = current()
    name = res.key(f"deliveries:{task.request.id}:{task.request.retries}")
    try:
        pipe = res.redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, res.settings.dedup_ttl_seconds)
        count, _ = pipe.execute()
        return int(count)
    except STORE_OUTAGES as exc:
        log.warning("could not count this redelivery: %r", exc)
        return 0


def forget_deliveries(task: Task) -> None:
    """The run ended in Python (any exit): it did not kill its worker."""
    res = current()
    _best_effort("clear the delivery count",
                 lambda: res.redis.delete(res.key(f"deliveries:{task.request.id}:{task.request.retries}")))


def dead_letter(task: Task, stage: Stage, data: Any, error: str, exc: BaseException | None = None) -> NoReturn:
    """Park the message for replay, then free its conversation's line and stop the chain.

    If the store cannot take the dead letter (PostgreSQL down), the message stays in the broker: it
    is published again later, marked PARKED, and that run writes the dead letter, as often as it
    takes. Nothing is acked away unparked.
    """
    msg_id = msg_id_of(data)
    stored = {k: v for k, v in data.items() if k != PARKED} if isinstance(data, dict) else {"raw": data}
    try:
        letter = do_dead_letter(msg_id, stage.name, stored, error, exc=exc)
    except Exception as write_error:
        log.exception("could not write the dead letter; it stays in the broker and is written later; payload=%s",
                      json.dumps(stored, ensure_ascii=False, default=str)[:4000])
        policy = RetryPolicy.from_settings(current().settings)
        parked = {**stored, PARKED: {"stage": stage.name, "error": error[:4000]}}
        publish_again(task, args=(parked,), countdown=policy.countdown(min(task.request.retries, 6)),
                      max_retries=None, exc=write_error, **QUIET_ARGS)
    order = order_of(stored)
    if order is not None:
        _best_effort("free the line", lambda: ordering.finish(msg_id, order))  # the next message may go
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
    if exit.kind in (ExitKind.REQUEUE, ExitKind.RETRY):
        args = exit.args if exit.kind is ExitKind.REQUEUE else data
        order = order_of(args)
        if order is not None:  # waiting in a queue again: not stuck
            _best_effort("mark the message queued", lambda: ordering.queued(msg_id_of(data), order))
        if exit.kind is ExitKind.REQUEUE:
            publish_again(task, args=(exit.args,), countdown=exit.countdown, max_retries=None, **QUIET_ARGS)
        publish_again(task, exc=exc, countdown=exit.countdown, max_retries=None)
    if exit.kind is ExitKind.APOLOGY and payload is not None:
        record_exception(payload.msg_id, stage, exc)
        return run_skill.with_apology(payload, exit.reason).to_dict()
    dead_letter(task, stage, data, exit.reason or f"{type(exc).__name__}: {exc}", exc=exc)


def pipeline_task(stage: Stage, load: Callable[[Any], Any] = load_payload) -> Callable[[Callable[..., Any]], Task]:
    """Register a stage as a task with its constant name, queue and time limit: `load` turns the
    message's argument into the stage function's, a StagePayload result goes out as its dict (handed
    on to the next stage, confirmed, before this one is acked), and any error leaves by its exit in
    workers.exits."""

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
            killed = count_delivery(self)
            try:
                started = timeline.begin(data, stage.name, tries, worker)
                result = timeline.end(guarded(self, data, killed), stage.name, started, tries, worker)
                metrics.stage_done(stage.name, started, data, result)
                hand_on(self, result)
                return result
            finally:
                if killed:
                    forget_deliveries(self)

        def guarded(self: Task, data: Any, killed: int) -> Any:
            with message_context(msg_id_of(data), stage.name, *log_context_of(data)):
                parked = data.get(PARKED) if isinstance(data, dict) else None
                if isinstance(parked, dict):  # its dead letter waits for the store: write it now
                    dead_letter(self, stage, data, str(parked.get("error") or "dead letter"))
                limit = current().settings.worker_delivery_limit
                if killed >= limit > 0:
                    reason = f"poison: its worker died during {killed} runs of {stage.name} (WORKER_DELIVERY_LIMIT)"
                    log.error("%s", reason)
                    dead_letter(self, stage, data, reason, exc=PoisonMessage(reason))
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
