"""Every Celery task, thin: the four pipeline stages (a stage function and its error exits) and the beat sweeps."""

from __future__ import annotations

import functools
import json
import logging
import os
import random
from typing import Any, Callable, NoReturn

import redis
from celery import Task, signals
from celery.exceptions import Ignore

from workers.resources import setup_django

# Workers only: the listener imports workers.celery/pipeline, never this module.
setup_django()

from django.db import (  # noqa: E402
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
)

from conf.settings import get_settings  # noqa: E402
from webapp.actions.dataflow import do_record_exception  # noqa: E402
from webapp.actions.deadletters import do_dead_letter  # noqa: E402
from webapp.actions.audit_archive import do_archive_audit, do_verify_audit_chain  # noqa: E402
from webapp.actions.retention import do_apply_retention  # noqa: E402
from workers.stages import deliver, postprocess, preprocess, run_skill  # noqa: E402
from workers.state import ordering, session  # noqa: E402
from workers import reminders, timeline  # noqa: E402
from workers.celery import app  # noqa: E402
from workers.dingtalk.api import Throttled  # noqa: E402
from workers.errors import (  # noqa: E402
    DuplicateMessage,
    NothingToAnswer,
    PoisonMessage,
    TransientError,
)
from conf.logs import message_context  # noqa: E402
from contract.pipeline import AUDIT_ARCHIVE_TASK, AUDIT_VERIFY_TASK, BEAT_QUEUE, DELIVER, POSTPROCESS, PREPROCESS, REMINDER_SWEEP_TASK, RETENTION_TASK, RUN_SKILL, Stage  # noqa: E402
from skills.remote.skill import use_breaker_storage  # noqa: E402
from workers.resources import breaker_storage, reset_clients  # noqa: E402

log = logging.getLogger("workers.tasks")

# Remote skills' circuit breakers keep their state in Redis: every worker process (and host)
# stops calling a failing remote together, and tries it again together.
use_breaker_storage(breaker_storage)

# Re-queues that are not failures (waiting for the conversation's turn, DingTalk "too fast") are
# counted in the payload; after this many throttled re-queues the message is dead-lettered.
MAX_THROTTLED_REQUEUES = 100
# Retries carry new args; keep user text out of the message headers (see pipeline.signature).
QUIET_ARGS = {"argsrepr": "(<payload>,)", "kwargsrepr": "{}"}
# Celery renders every task's return value (the whole payload) into its task-succeeded event and
# log line: ~10 % of a worker's CPU at 1024 characters, and user text in Flower. Every payload
# starts with its msg_id, which is all a monitor needs.
RESULT_REPR_CHARS = 48

StageFunction = Callable[[Task, dict[str, Any]], dict[str, Any]]

# A store that does not answer right now is an outage, not a bad message: retry the stage.
STORE_OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OperationalError,
    InterfaceError,
)


def retry_countdown(retries: int, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter, capped far below the Redis visibility timeout."""
    settings = get_settings()
    cap = settings.task_retry_backoff_max_seconds
    base = min(cap, settings.task_retry_backoff_seconds * (2 ** retries))
    # Jitter in [base/2, base] spreads retries of many messages hit by the same outage.
    countdown = random.uniform(base / 2, base)
    if retry_after:
        countdown = max(countdown, retry_after)
    return min(countdown, cap)


def msg_id_of(payload: Any) -> str:
    if isinstance(payload, dict):
        return str(payload.get("msg_id") or (payload.get("turn") or {}).get("msg_id") or "-")
    return "-"


def requeues(payload: Any, stage: Stage) -> int:
    """Retries of this stage that were not failures (turnstile waits, throttling)."""
    counts = payload.get("requeued") if isinstance(payload, dict) else None
    return int((counts or {}).get(stage.name, 0)) if isinstance(counts, dict) else 0


def requeue(task: Task, stage: Stage, payload: dict[str, Any], countdown: float, **extra: Any) -> NoReturn:
    """Run this stage again later without counting it as a failed attempt."""
    counts = dict(payload.get("requeued") or {})
    counts[stage.name] = int(counts.get(stage.name, 0)) + 1
    raise task.retry(args=({**payload, **extra, "requeued": counts},), countdown=countdown,
                     max_retries=None, **QUIET_ARGS)


def dead_letter(task: Task, stage: Stage, payload: Any, error: str) -> NoReturn:
    """Park the message for replay and stop the chain; if even that fails, retry later."""
    msg_id = msg_id_of(payload)
    if isinstance(payload, dict):
        ordering.finish(payload)  # given up: the next message of the conversation may go
    try:
        letter = do_dead_letter(msg_id, stage.name, payload if isinstance(payload, dict) else
                                {"raw": payload}, error)
    except Exception:
        log.exception("could not write the dead letter; payload=%s",
                      json.dumps(payload, ensure_ascii=False, default=str)[:4000])
        if task.request.retries < get_settings().task_max_retries:
            raise task.retry(countdown=retry_countdown(task.request.retries), max_retries=None)
        raise Ignore()
    log.error("dead-lettered (#%s): %s", letter.pk, error)
    raise Ignore()


def record_exception(msg_id: str, stage: Stage, exc: Exception) -> None:
    """The failure's audit row (a dead letter writes its own); the answer does not wait on it."""
    try:
        do_record_exception(msg_id, stage.name, exc, outcome="apology")
    except Exception:
        log.exception("could not write the exception's audit row")


def pipeline_task(stage: Stage) -> Callable[[StageFunction], Task]:
    """Register a stage as a task with its constant name, queue and time limit, and give every
    error kind its one exit: retry, dead letter, quiet stop or (run_skill) the apology."""

    def decorate(fn: StageFunction) -> Task:
        @app.task(
            name=stage.task,
            time_limit=stage.time_limit,
            soft_time_limit=max(1, stage.time_limit - 5),
            bind=True,
            acks_late=True,
            max_retries=None,  # bounded by TASK_MAX_RETRIES below, then dead-lettered
            resultrepr_maxsize=RESULT_REPR_CHARS,
        )
        @functools.wraps(fn)
        def task(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
            # The stage's start and end ride in the payload (workers.timeline), written once at the end.
            tries, worker = self.request.retries + 1, timeline.worker_name(self.request.hostname)
            started = timeline.begin(payload, stage.name, tries, worker)
            return timeline.end(guarded(self, payload), stage.name, started, tries, worker)

        def guarded(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
            with message_context(msg_id_of(payload), stage.name):
                try:
                    return fn(self, payload)
                except (DuplicateMessage, NothingToAnswer) as exc:
                    log.info("stopping quietly: %s", exc)
                    raise Ignore() from exc
                except ordering.WaitForTurn as exc:
                    log.debug("waiting for %d earlier message(s): %.2f s", exc.ahead, exc.countdown)
                    requeue(self, stage, exc.payload, exc.countdown)
                except Throttled as exc:
                    throttled = int(payload.get("throttled") or 0) + 1
                    if throttled > MAX_THROTTLED_REQUEUES:
                        dead_letter(self, stage, payload, f"still throttled after {throttled} tries: {exc}")
                    countdown = retry_countdown(min(throttled, 6), exc.retry_after)
                    log.warning("DingTalk says too fast; re-queued (%d) in %.1f s: %s", throttled, countdown, exc)
                    requeue(self, stage, payload, countdown, throttled=throttled)
                except (TransientError, *STORE_OUTAGES) as exc:
                    retries = self.request.retries - requeues(payload, stage)
                    reason = f"{type(exc).__name__}: {exc}"
                    if retries >= get_settings().task_max_retries:
                        dead_letter(self, stage, payload, f"gave up after {retries} retries: "
                                                          f"{reason}")
                    countdown = retry_countdown(retries, getattr(exc, "retry_after", None))
                    log.warning("transient error, retry %d in %.1f s: %s",
                                retries + 1, countdown, reason)
                    raise self.retry(exc=exc, countdown=countdown, max_retries=None)
                except PoisonMessage as exc:
                    dead_letter(self, stage, payload, f"poison: {exc}")
                except Exception as exc:  # the one broad except: log ids, then one exit
                    skill = (payload.get("turn") or {}).get("skill", "") if isinstance(
                        payload, dict) else ""
                    log.exception("unexpected error (skill=%s): %r", skill or "-", exc)
                    if stage is RUN_SKILL:
                        record_exception(msg_id_of(payload), stage, exc)
                        return run_skill.with_apology(payload, "crash")
                    dead_letter(self, stage, payload, f"{type(exc).__name__}: {exc}")

        return task

    return decorate


@pipeline_task(PREPROCESS)
def preprocess_task(task: Task, envelope: dict[str, Any]) -> dict[str, Any]:
    # The task id is the pipeline run id: a redelivered copy of this task passes its own claim.
    return preprocess.preprocess(envelope, run_id=str(task.request.id))


@pipeline_task(RUN_SKILL)
def run_skill_task(task: Task, payload: dict[str, Any]) -> dict[str, Any]:
    # Earlier messages of the conversation first; then the session as they left it.
    payload = session.refresh_history(ordering.admit(payload, RUN_SKILL.name))
    return run_skill.run_skill(payload)


@pipeline_task(POSTPROCESS)
def postprocess_task(task: Task, payload: dict[str, Any]) -> dict[str, Any]:
    ordering.touch(payload)  # still moving: later messages of the conversation keep waiting
    return postprocess.postprocess(payload)


@pipeline_task(DELIVER)
def deliver_task(task: Task, payload: dict[str, Any]) -> dict[str, Any]:
    payload = ordering.admit(payload, DELIVER.name)
    result = deliver.deliver(payload)
    if result["result"] != "concurrent":  # the concurrent run finishes it
        ordering.finish(payload)
    return result


# --- per-process hygiene: DB connections and clients are never shared across a fork -----------

@signals.worker_init.connect
def _preload_skills(sender: Any = None, **_: Any) -> None:
    # Only workers that run skills (the -Q selection is known by now).
    queues = getattr(getattr(sender, "app", app).amqp.queues, "consume_from", None) or {}
    if RUN_SKILL.queue in queues:
        run_skill.preload_skills()


@signals.worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    # Drop sockets inherited from the parent without talking on them (that would break the
    # parent's session); each child opens its own.
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            try:
                os.close(conn.connection.fileno())
            except (OSError, AttributeError):
                pass
            conn.connection = None
    reset_clients()


@signals.task_prerun.connect
def _close_old_connections(task: Task | None = None, **_: Any) -> None:
    # Drop connections past CONN_MAX_AGE or broken before each task (once per task is enough: a
    # connection an error left unusable is dropped before the next task uses it); not in eager
    # runs (tests own theirs).
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


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
