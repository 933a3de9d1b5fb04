"""Intent routing seam: a Router turns a Turn into (intent, skill, confidence), once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from skills import registry
from skills.api import Turn
from skills.help.skill import HELP_WORDS


@dataclass(frozen=True)
class Route:
    intent: str
    skill: str
    confidence: float


class Router(Protocol):
    def route(self, turn: Turn) -> Route: ...


class KeywordRouter:
    """The spine's router: `help`/`帮助`/`?` → help, anything else → the fallback skill.

    The embedding router (skills/routing, issue 4) replaces it through `install_router`.
    """

    def route(self, turn: Turn) -> Route:
        words = turn.text.strip().lower()
        if any(words.startswith(word) for word in HELP_WORDS):
            return Route(intent="help", skill=registry.skill_for_intent("help"), confidence=1.0)
        return Route(intent="echo", skill=registry.FALLBACK_SKILL, confidence=1.0)


_router: Router = KeywordRouter()


def install_router(router: Router) -> None:
    """Use `router` in this process from now on (e.g. a trained model loaded at worker start)."""
    global _router
    _router = router


def route(turn: Turn) -> Turn:
    """The turn with intent, skill and confidence filled in."""
    decision = _router.route(turn)
    return turn.replace(
        intent=decision.intent, skill=decision.skill, confidence=decision.confidence
    )
