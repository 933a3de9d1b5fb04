"""Test-only worker bootstrap: `celery -A tests.support.worker_app worker ...` routes by keywords.

End-to-end tests of the built-in skills need messages to reach a given skill without a trained
router. This module is the Celery app of workers started by those tests: the same app, with a
KeywordSkillRouter as the router every worker process builds at start (the app's
`router_factory`). Production never imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.celery import app

if TYPE_CHECKING:
    from skills.api import Turn
    from workers.resources import Resources
    from workers.routing.policy import Route

__all__ = ["RULES", "KeywordSkillRouter", "app"]

# (words any of which appear in the text, intent, skill); first match wins, else chat.
RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("remind", "提醒"), "schedule.create", "schedule"),
    (("bonus", "annual leave", "handbook", "年假", "奖金"), "docsearch.ask", "docsearch"),
    # a remote skill a test registers under this name (tests/e2e/test_secrets_never_leak.py)
    (("工单", "ticket"), "ithelp.ask", "ithelp"),
)


class KeywordSkillRouter:
    """help → help (the spine's rule), the RULES above, anything else → llm_chat."""

    def route(self, turn: Turn) -> Route:
        # Imported on use: the routing modules read Django models, set up once the worker starts.
        from workers.routing.policy import Route
        from workers.routing.routers import KEYWORDS

        decision = KEYWORDS.route(turn)
        if decision.intent == "help":
            return decision
        text = turn.text.lower()
        for words, intent, skill in RULES:
            if any(word in text for word in words):
                return Route(intent=intent, skill=skill, confidence=1.0, decision="keyword")
        return Route(intent="chat", skill="llm_chat", confidence=1.0, decision="keyword")


def keyword_skill_router(res: Resources) -> KeywordSkillRouter:
    return KeywordSkillRouter()


app.conf.router_factory = keyword_skill_router
