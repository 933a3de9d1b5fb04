"""Celery app of the gateway end-to-end tests: the real app, every message routed to the probe skill.

The worker start installs the embedding router (workers.routing.routers); the handlers below run after
it and put the probe router back. Production never imports this module.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from workers.celery import app  # noqa: F401 - `celery -A tests.e2e.gateway_app` finds it here
from workers.resources import setup_django

setup_django()  # workers.routing.routers reads Django models (the task module would do this too)

from skills import registry  # noqa: E402
from skills.api import Turn  # noqa: E402
from workers.routing import routers  # noqa: E402

registry.SKILLS.setdefault("probe", "tests.e2e.probe_skill:ProbeSkill")


class ProbeRouter:
    def route(self, turn: Turn) -> routers.Route:
        return routers.Route(intent="probe", skill="probe", confidence=1.0)


@signals.worker_init.connect
@signals.worker_process_init.connect
def _probe_routing(**_: Any) -> None:
    routers.install_router(ProbeRouter())


routers.install_router(ProbeRouter())
