"""Celery app (queues, routes, JSON only, acks_late, time limits) and every signal handler of the worker
processes: Django set up before the task modules load, per-process resources built at process start.

Importable without Django: nothing here loads it until a worker asks for its task modules.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery, signals
from celery.schedules import crontab
from kombu import Exchange, Queue

from conf.logs import configure_logging
from conf.settings import get_settings
from contract.pipeline import (
    AUDIT_ARCHIVE_TASK,
    AUDIT_VERIFY_TASK,
    BEAT_QUEUE,
    EXCHANGE,
    PREPROCESS,
    QUEUE_NAMES,
    REMINDER_SWEEP_TASK,
    RETENTION_TASK,
    SKILL_QUEUE_BY_KIND,
    STAGES,
)
from workers.confirms import CONFIRM_OPTIONS
from workers.health import Heartbeat, start_beat_heartbeat

if TYPE_CHECKING:
    from workers.resources import Resources

# The handlers import the workers' own modules when they run: a process that only publishes
# (imports this module for the app) loads neither Django nor the skills nor the stages.


# What every stage publish carries: `mandatory` (unroutable → an error, not a silent drop) and a
# bound on the wait for the broker's confirm (py-amqp waits forever without one: celery#9259). The
# confirm itself comes from the producer workers.tasks passes (workers.confirms), not from the app.
PUBLISH_OPTIONS: dict[str, Any] = {"mandatory": True, **CONFIRM_OPTIONS}


def make_app() -> Celery:
    """Build the app from Settings; the worker loads task modules, the listener does not."""
    settings = get_settings()
    # No automatic Django fix-up (it would load Django in any process that has
    # DJANGO_SETTINGS_MODULE set, and reconnect to PostgreSQL around every task): the handlers
    # below set Django up where task modules load and keep connections per CONN_MAX_AGE.
    celery_app = Celery("dtbot", broker=settings.celery_broker_url, fixups=[])
    # Readiness for compose healthchecks (workers/health.py): a heartbeat file while consuming.
    celery_app.steps["consumer"].add(Heartbeat)
    exchange = Exchange(EXCHANGE, type="direct", durable=True)
    celery_app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=4,
        task_queues=[
            Queue(name, exchange, routing_key=name, durable=True) for name in QUEUE_NAMES
        ],
        task_default_queue=PREPROCESS.queue,
        task_default_exchange=EXCHANGE,
        task_default_routing_key=PREPROCESS.queue,
        task_default_delivery_mode="persistent",
        # Routes by task name, so retries and replays land on the stage's queue too. Every publish
        # of a stage (hand-off, retry, re-queue) is `mandatory`: on its confirm-mode channel an
        # unroutable message raises instead of being confirmed and dropped (workers.tasks then
        # leaves the running stage un-acked).
        task_routes={s.task: {"queue": s.queue, "routing_key": s.queue, **PUBLISH_OPTIONS} for s in STAGES},
        task_time_limit=settings.task_time_limit_seconds,
        task_soft_time_limit=max(1, settings.task_time_limit_seconds - 10),
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        # Crontab entries read in the company's time (Django's TIME_ZONE); times stay UTC inside.
        timezone="Asia/Shanghai",
        enable_utc=True,
        # Only worker processes import this (Celery reads `imports` at worker start), so a
        # process that imports this module to publish never loads Django or the stages.
        imports=("workers.tasks",),
        # Resources -> the router of a process that runs preprocess (a test app may set another).
        router_factory=None,
        beat_schedule={
            "reminders-sweep": {
                "task": REMINDER_SWEEP_TASK,
                "schedule": settings.reminder_sweep_seconds,
                # A tick not taken within one period is dropped: the next one does the same work.
                "options": {"queue": BEAT_QUEUE, "routing_key": BEAT_QUEUE,
                            "expires": max(1.0, settings.reminder_sweep_seconds)},
            },
            "retention-daily": {
                "task": RETENTION_TASK,
                # 03:17 China time (the app's timezone below): off-peak, and off the hour.
                "schedule": crontab(hour=3, minute=17),
                "options": {"queue": BEAT_QUEUE, "routing_key": BEAT_QUEUE, "expires": 3600},
            },
            # Just after midnight China time: the day's audit rows and the chain's head go to the
            # archive, then the chain is verified against that fresh checkpoint.
            "audit-archive-daily": {
                "task": AUDIT_ARCHIVE_TASK,
                "schedule": crontab(hour=0, minute=23),
                "options": {"queue": BEAT_QUEUE, "routing_key": BEAT_QUEUE, "expires": 3600},
            },
            "audit-verify-daily": {
                "task": AUDIT_VERIFY_TASK,
                "schedule": crontab(hour=0, minute=53),
                "options": {"queue": BEAT_QUEUE, "routing_key": BEAT_QUEUE, "expires": 3600},
            },
        },
    )
    if settings.broker_is_redis:
        # Time limits stay below the visibility timeout (checked in Settings), so a running task
        # is never handed to a second worker. Redis has no publisher confirms: a publish that
        # returns is an LPUSH Redis answered (as durable as its persistence), and a failed one raises.
        celery_app.conf.broker_transport_options = {
            "visibility_timeout": settings.redis_visibility_timeout_seconds,
        }
    else:
        # No publisher confirms app-wide: the event dispatcher's one channel is shared by every pool
        # thread, and a confirm awaited there stalled the worker (workers.confirms). The stage
        # publishes take confirm-mode producers of their own (workers.confirms): a stage is acked
        # only after RabbitMQ confirmed its successor (workers.tasks hands on inside the task).
        celery_app.conf.broker_transport_options = {}
    return celery_app


app = make_app()


# --- every signal handler of a worker process -----------------------------------------------------

@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    """Replace Celery's logging setup with ours, whose lines carry the msgId."""
    configure_logging(loglevel or get_settings().log_level)


@signals.celeryd_init.connect
def _prepare_metrics(**_: Any) -> None:
    """Worker metrics in multiprocess mode, set before the task modules define them (workers.metrics)."""
    from workers.metrics import prepare_multiprocess

    prepare_multiprocess(get_settings())


@signals.import_modules.connect
def _setup_django(**_: Any) -> None:
    """Django before the task modules (they import the webapp's actions), as Celery's own Django
    fix-up does; sent only where task modules load (workers, beat), never in a publisher."""
    from workers.resources import setup_django

    setup_django()


@signals.worker_init.connect
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    worker_app = getattr(sender, "app", app)
    if _consumed(worker_app) & set(SKILL_QUEUE_BY_KIND.values()):
        # The first message should not pay for the skills' imports; prefork children inherit them.
        from workers.stages.run_skill import preload_skills

        preload_skills()
    from celery.concurrency import get_implementation

    pool = get_implementation(getattr(sender, "pool_cls", "prefork"))
    if not pool.__module__.endswith("prefork"):  # a forked child builds its own (worker_process_init)
        _start_process(worker_app)


@signals.worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    from django.db import connections

    # Drop sockets inherited from the parent without talking on them (that would break the
    # parent's session); each child opens its own.
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            try:
                os.close(conn.connection.fileno())
            except (OSError, AttributeError):
                pass
            conn.connection = None
    _start_process(app)


@signals.task_prerun.connect
def _close_old_connections(task: Any = None, **_: Any) -> None:
    # Drop connections past CONN_MAX_AGE or broken before each task (once per task is enough: a
    # connection an error left unusable is dropped before the next task uses it); not in eager
    # runs (tests own theirs).
    if task is not None and not getattr(task.request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()


@signals.worker_ready.connect
def _mark_ready(**_: Any) -> None:
    """Readiness probe for process managers and tests: the worker consumes from now on."""
    from workers.metrics import start_exporter

    # After the pool started, so no pool process inherits the exporter's socket.
    start_exporter(get_settings(), app)
    path = get_settings().worker_ready_file
    if path:
        Path(path).write_text(str(os.getpid()))


@signals.worker_process_shutdown.connect
def _metrics_child_exited(pid: int | None = None, **_: Any) -> None:
    from workers.metrics import child_exited

    child_exited(pid or os.getpid())


@signals.beat_init.connect
def _beat_heartbeat(**_: Any) -> None:
    start_beat_heartbeat()


@signals.worker_shutdown.connect
def _unmark_ready(**_: Any) -> None:
    from workers.metrics import cleanup_multiprocess

    cleanup_multiprocess()
    path = get_settings().worker_ready_file
    if path:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()


def _consumed(worker_app: Celery) -> set[str]:
    return set(worker_app.amqp.queues.consume_from or {})


def _start_process(worker_app: Celery) -> Resources:
    """This process's resources, and its router where it runs preprocess (loading in the background)."""
    from workers import resources

    res = resources.Resources(get_settings())
    resources.install(res)  # a prefork child's inherited one is dropped, never used or closed
    consumed = _consumed(worker_app)
    if not consumed or PREPROCESS.queue in consumed:
        factory = worker_app.conf.router_factory
        if factory is None:
            from workers.routing.routers import start_embedding_router as factory
        res.router = factory(res)
    return res
