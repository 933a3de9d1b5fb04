"""Test-only worker bootstrap: `celery -A tests.support.worker_app worker ...` routes by keywords.

Until the embedding router (issue 4) is installed in workers, end-to-end tests of the built-in
skills need messages to reach a given skill. This module is the Celery app of workers started by
those tests: the same app, plus a KeywordSkillRouter installed through the routing seam
(`workers.routing.routers.install_router`). Production never imports it.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from workers.resources import setup_django

setup_django()  # workers.routing.routers reads the admin's skill settings (Django), like the task modules

from skills.api import Turn  # noqa: E402
from workers.celery import app  # noqa: E402
from workers.routing.routers import KeywordRouter, Route, install_router  # noqa: E402

__all__ = ["app", "KeywordSkillRouter", "RULES"]

# (words any of which appear in the text, intent, skill); first match wins, else chat.
RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("remind", "提醒"), "schedule.create", "schedule"),
    (("bonus", "annual leave", "handbook", "年假", "奖金"), "docsearch.ask", "docsearch"),
)


class KeywordSkillRouter:
    """help → help (the spine's rule), the RULES above, anything else → llm_chat."""

    def __init__(self) -> None:
        self.spine = KeywordRouter()

    def route(self, turn: Turn) -> Route:
        decision = self.spine.route(turn)
        if decision.intent == "help":
            return decision
        text = turn.text.lower()
        for words, intent, skill in RULES:
            if any(word in text for word in words):
                return Route(intent=intent, skill=skill, confidence=1.0, decision="keyword")
        return Route(intent="chat", skill="llm_chat", confidence=1.0, decision="keyword")


def _install(**_: Any) -> None:
    install_router(KeywordSkillRouter())


# Connected after workers.routing.routers's own handlers (imported above), so this router replaces the
# embedding router the worker start installs, in the main process and in pool children alike.
_install()
signals.worker_init.connect(_install, weak=False)
signals.worker_process_init.connect(_install, weak=False)
