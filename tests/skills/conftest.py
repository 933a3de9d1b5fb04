"""Skill tests reuse the worker fixtures (settings on a Redis namespace) and the end-to-end stack;
`run_pipeline(text, user=alice) -> replies` is the skill authors' fixture over the real chain."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from testkit.pipeline import Bot
from testkit.stack import Stack
from tests.e2e.conftest import pytest_runtest_makereport, stack  # noqa: F401
from tests.workers.conftest import redis_conn, worker_settings  # noqa: F401


@pytest.fixture
def bot(stack: Stack, worker_settings, tmp_path) -> Iterator[Bot]:  # noqa: F811
    """A bot to start (worker_settings: this process publishes version keys under the stack's prefix)."""
    kit = Bot(stack, SETTINGS_CHECK_SECONDS="0.5", ROUTER_DIR=str(tmp_path / "router"))
    yield kit
    kit.close()


@pytest.fixture
def run_pipeline(bot: Bot) -> Callable[..., list[dict[str, Any]]]:
    """A running bot's `run_pipeline(text, user=alice, timeout=30) -> [reply dicts]`."""
    return bot.start().run_pipeline
