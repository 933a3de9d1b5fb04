"""Every error kind's one exit from a pipeline task: a table from exception to exit (no Celery here).

| raised                                   | exit                                                          |
|------------------------------------------|---------------------------------------------------------------|
| DuplicateMessage, NothingToAnswer        | stop quietly (the chain ends, nothing is parked)              |
| WaitForTurn                              | re-queue the stage, not counted as a failure                  |
| Throttled                                | re-queue, not counted; dead letter after MAX_THROTTLED_REQUEUES |
| TransientError, a store outage           | retry with backoff; dead letter after TASK_MAX_RETRIES        |
| PoisonMessage                            | dead letter                                                   |
| anything else                            | run_skill: the apology; elsewhere a dead letter (traceback logged) |

`workers.tasks` carries the chosen exit out with Celery (retry, Ignore, the dead-letter write).
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from django.db import InterfaceError, OperationalError

from conf.settings import Settings
from contract.pipeline import RUN_SKILL, Stage
from workers.errors import (
    DuplicateMessage,
    NothingToAnswer,
    PoisonMessage,
    Throttled,
    TransientError,
    WaitForTurn,
)

# A store that does not answer right now is an outage, not a bad message: retry the stage.
STORE_OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OperationalError,
    InterfaceError,
)
# Re-queues that are not failures (waiting for the conversation's turn, DingTalk "too fast") are
# counted in the payload; after this many throttled re-queues the message is dead-lettered.
MAX_THROTTLED_REQUEUES = 100


class ExitKind(enum.Enum):
    STOP = "stop"  # end the chain quietly
    REQUEUE = "requeue"  # run the stage again later with `args`, not counted as a failed attempt
    RETRY = "retry"  # run the stage again later with the same argument, counted
    DEAD_LETTER = "dead_letter"  # park the message for replay with `reason`; the chain ends
    APOLOGY = "apology"  # run_skill: hand on the standard apology instead of the skill's reply


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a stage is retried (TASK_MAX_RETRIES, TASK_RETRY_BACKOFF_*)."""

    max_retries: int
    backoff_seconds: float
    backoff_max_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.task_max_retries, settings.task_retry_backoff_seconds,
                   settings.task_retry_backoff_max_seconds)

    def countdown(self, retries: int, retry_after: float | None = None,
                  uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Exponential backoff with jitter, capped far below the Redis visibility timeout."""
        cap = self.backoff_max_seconds
        base = min(cap, self.backoff_seconds * (2 ** retries))
        # Jitter in [base/2, base] spreads retries of many messages hit by the same outage.
        countdown = uniform(base / 2, base)
        if retry_after:
            countdown = max(countdown, retry_after)
        return min(countdown, cap)


@dataclass(frozen=True)
class Attempt:
    """One run of a stage that raised: what its exit is chosen from."""

    stage: Stage
    data: Mapping[str, Any]  # the task's argument (a payload dict, or preprocess's envelope)
    retries: int  # the task's retries so far, re-queues included
    policy: RetryPolicy

    def requeues(self) -> int:
        """Retries of this stage that were not failures (turnstile waits, throttling)."""
        counts = self.data.get("requeued")
        return int(counts.get(self.stage.name, 0)) if isinstance(counts, Mapping) else 0

    @property
    def throttled(self) -> int:
        return int(self.data.get("throttled") or 0)

    def requeued(self, **changes: Any) -> dict[str, Any]:
        """The argument of the re-queued run: this one with `changes` and one more re-queue counted."""
        counts = dict(self.data.get("requeued") or {})
        counts[self.stage.name] = int(counts.get(self.stage.name, 0)) + 1
        return {**self.data, **changes, "requeued": counts}


@dataclass(frozen=True)
class Exit:
    """Where a failed run goes, and the line the wrapper logs about it."""

    kind: ExitKind
    reason: str = ""  # a dead letter's error, or the outcome of an apology
    countdown: float = 0.0
    args: dict[str, Any] | None = None  # REQUEUE: the next run's argument
    log_level: int = logging.INFO
    log_message: str = ""
    traceback: bool = False


def _stop(exc: Exception, attempt: Attempt) -> Exit:
    return Exit(ExitKind.STOP, log_message=f"stopping quietly: {exc}")


def _wait_for_turn(exc: Exception, attempt: Attempt) -> Exit:
    assert isinstance(exc, WaitForTurn)
    return Exit(ExitKind.REQUEUE, countdown=exc.countdown, args=attempt.requeued(order=exc.order.to_dict()),
                log_level=logging.DEBUG,
                log_message=f"waiting for {exc.ahead} earlier message(s): {exc.countdown:.2f} s")


def _throttled(exc: Exception, attempt: Attempt) -> Exit:
    assert isinstance(exc, Throttled)
    throttled = attempt.throttled + 1
    if throttled > MAX_THROTTLED_REQUEUES:
        return Exit(ExitKind.DEAD_LETTER, f"still throttled after {throttled} tries: {exc}")
    countdown = attempt.policy.countdown(min(throttled, 6), exc.retry_after)
    return Exit(ExitKind.REQUEUE, countdown=countdown, args=attempt.requeued(throttled=throttled),
                log_level=logging.WARNING,
                log_message=f"DingTalk says too fast; re-queued ({throttled}) in {countdown:.1f} s: {exc}")


def _transient(exc: Exception, attempt: Attempt) -> Exit:
    retries = attempt.retries - attempt.requeues()
    reason = f"{type(exc).__name__}: {exc}"
    if retries >= attempt.policy.max_retries:
        return Exit(ExitKind.DEAD_LETTER, f"gave up after {retries} retries: {reason}")
    countdown = attempt.policy.countdown(retries, getattr(exc, "retry_after", None))
    return Exit(ExitKind.RETRY, countdown=countdown, log_level=logging.WARNING,
                log_message=f"transient error, retry {retries + 1} in {countdown:.1f} s: {reason}")


def _poison(exc: Exception, attempt: Attempt) -> Exit:
    return Exit(ExitKind.DEAD_LETTER, f"poison: {exc}")


def _unexpected(exc: Exception, attempt: Attempt) -> Exit:
    skill = ""
    turn = attempt.data.get("turn")
    if isinstance(turn, Mapping):
        skill = str(turn.get("skill") or "")
    message = f"unexpected error (skill={skill or '-'}): {exc!r}"
    if attempt.stage == RUN_SKILL:
        return Exit(ExitKind.APOLOGY, "crash", log_level=logging.ERROR, log_message=message, traceback=True)
    return Exit(ExitKind.DEAD_LETTER, f"{type(exc).__name__}: {exc}", log_level=logging.ERROR,
                log_message=message, traceback=True)


ExitRule = Callable[[Exception, Attempt], Exit]

# First match wins: Throttled before TransientError (it is one), Exception last.
EXITS: tuple[tuple[tuple[type[Exception], ...], ExitRule], ...] = (
    ((DuplicateMessage, NothingToAnswer), _stop),
    ((WaitForTurn,), _wait_for_turn),
    ((Throttled,), _throttled),
    ((TransientError, *STORE_OUTAGES), _transient),
    ((PoisonMessage,), _poison),
    ((Exception,), _unexpected),
)


def exit_for(exc: Exception, attempt: Attempt) -> Exit:
    """The exit of the first row of EXITS that `exc` is an instance of."""
    for kinds, rule in EXITS:
        if isinstance(exc, kinds):
            return rule(exc, attempt)
    raise AssertionError("unreachable: the last row catches every Exception")
