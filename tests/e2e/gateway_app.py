"""Celery app of the gateway end-to-end tests: the real app, every message routed to the probe skill.

The app's `router_factory` gives every worker process the probe router instead of the trained
one. Production never imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from skills import registry
from workers.celery import app
from workers.routing.policy import Route

if TYPE_CHECKING:
    from skills.api import Turn
    from workers.resources import Resources

__all__ = ["app"]

registry.SKILLS.setdefault("probe", "tests.e2e.probe_skill:ProbeSkill")


class ProbeRouter:
    def route(self, turn: Turn) -> Route:
        return Route(intent="probe", skill="probe", confidence=1.0)


def probe_router(res: Resources) -> ProbeRouter:
    return ProbeRouter()


app.conf.router_factory = probe_router
