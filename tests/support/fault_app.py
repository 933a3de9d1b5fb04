"""Test-only worker app of the worker fault suite: a skill that kills its own worker process.

`celery -A tests.support.fault_app worker ...`: the workers' app, plus the skill `worker_killer`
(registered here, never in production) that dies by SIGKILL the way an OOM kill or a segfault
ends a prefork child, and a router that sends texts containing POISON to it and everything else
to echo. Production never imports it.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from workers.celery import app

if TYPE_CHECKING:
    from workers.resources import Resources
    from workers.routing.policy import Route

__all__ = ["POISON", "WorkerKiller", "app"]

POISON = "POISON-KILL-9"


class WorkerKiller(AISkillPlugin):
    """Dies by SIGKILL on every message (a poison message, as its worker sees it)."""

    name = "worker_killer"
    intents = ("test.kill",)

    def execute(self, turn: Turn) -> Reply:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


registry.SKILLS[WorkerKiller.name] = f"{__name__}:WorkerKiller"


class PoisonRouter:
    """POISON → worker_killer, everything else → echo (the replies carry the ledger's token)."""

    def route(self, turn: Turn) -> Route:
        from workers.routing.policy import Route

        if POISON in turn.text:
            return Route(intent="test.kill", skill=WorkerKiller.name, confidence=1.0, decision="keyword")
        return Route(intent="echo", skill="echo", confidence=1.0, decision="keyword")


def poison_router(res: Resources) -> PoisonRouter:
    return PoisonRouter()


app.conf.router_factory = poison_router
