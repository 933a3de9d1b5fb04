"""`run_pipeline(text, user=alice) -> replies`: the skill authors' fixture over the real chain (the stack fixture)."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from testkit.pipeline import Bot
from testkit.stack import Stack


@pytest.fixture
def bot(stack: Stack, worker_settings, tmp_path) -> Iterator[Bot]:
    """A bot to start (worker_settings: this process publishes version keys under the stack's prefix)."""
    kit = Bot(stack, SETTINGS_CHECK_SECONDS="0.5", ROUTER_DIR=str(tmp_path / "router"))
    yield kit
    kit.close()


@pytest.fixture
def run_pipeline(bot: Bot) -> Callable[..., list[dict[str, Any]]]:
    """A running bot's `run_pipeline(text, user=alice, timeout=30) -> [reply dicts]`."""
    return bot.start().run_pipeline
