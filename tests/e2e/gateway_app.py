"""Celery app of the gateway end-to-end tests: the real app, every message routed to the probe skill."""

from __future__ import annotations

from skills import registry
from skills.api import Turn
from workers import routing
from workers.celery import app  # noqa: F401 - `celery -A tests.e2e.gateway_app` finds it here

registry.SKILLS.setdefault("probe", "tests.e2e.probe_skill:ProbeSkill")


class ProbeRouter:
    def route(self, turn: Turn) -> routing.Route:
        return routing.Route(intent="probe", skill="probe", confidence=1.0)


routing.install_router(ProbeRouter())
