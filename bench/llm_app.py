"""Celery app of bench/llm_pipeline.py's workers: the project's app, every message routed to llm_chat."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.celery import app
from workers.routing.policy import Route

if TYPE_CHECKING:
    from skills.api import Turn
    from workers.resources import Resources

__all__ = ["app"]


class ChatRouter:
    """Everything is a chat question (the bench measures the streaming path, not routing)."""

    def route(self, turn: Turn) -> Route:
        return Route(intent="chat", skill="llm_chat", confidence=1.0)


def chat_router(res: Resources) -> ChatRouter:
    return ChatRouter()


app.conf.router_factory = chat_router
