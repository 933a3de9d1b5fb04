"""End-to-end fixtures: a whole bot (sandbox, listener, real Celery workers) on private stores, and the
skill authors' `run_pipeline(text, user=alice) -> replies` over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from sandbox.client import SandboxClient
from testkit import services
from testkit.pipeline import Bot
from testkit.stack import Stack


def _database_url() -> str:
    """The pytest-django test database, as a URL the worker processes can use."""
    from django.db import connection

    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def sandbox_worker_env(broker_url: str, sandbox: Any, redis_prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a real worker process on the test database, talking to `sandbox`."""
    from testkit import processes

    env = processes.worker_env(
        CELERY_BROKER_URL=broker_url, DATABASE_URL=_database_url(), REDIS_KEY_PREFIX=redis_prefix,
        DINGTALK_OPENAPI_ENDPOINT=sandbox.base_url, DINGTALK_CLIENT_ID=sandbox.config.client_id,
        DINGTALK_CLIENT_SECRET=sandbox.config.client_secret,
    )
    return {**env, **extra}


def _make_stack(broker_url: str, redis_prefix: str, tmp_path: Path) -> Stack:
    return Stack(
        broker_url=broker_url,
        database_url=_database_url(),
        redis_prefix=redis_prefix,
        log_dir=tmp_path / "logs",
        extra_env={"INGEST_PING_INTERVAL_SECONDS": "5", "INGEST_WATCHDOG_SECONDS": "15"},
    )


def _running_stack(broker: AbstractContextManager[str], redis_prefix: str, tmp_path: Path, request) -> Iterator[Stack]:
    """Yield a stack on the broker URL `broker` gives; print its logs when the test failed."""
    with broker as url:
        bot = _make_stack(url, redis_prefix, tmp_path)
        try:
            yield bot
        finally:
            bot.stop()
            if getattr(request.node, "rep_call", None) and request.node.rep_call.failed:
                print(bot.logs())


@pytest.fixture
def stack(transactional_db, redis_prefix: str, tmp_path: Path, request) -> Iterator[Stack]:
    """A stack on a fresh RabbitMQ vhost."""
    yield from _running_stack(services.rabbit_vhost("dtbot-e2e"), redis_prefix, tmp_path, request)


@pytest.fixture
def redis_stack(transactional_db, redis_prefix: str, tmp_path: Path, request) -> Iterator[Stack]:
    """A stack whose Celery broker is Redis."""
    yield from _running_stack(services.redis_broker_db(), redis_prefix, tmp_path, request)


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


def sandbox_control(bot: Stack) -> SandboxClient:
    """A control client of the stack's own sandbox."""
    return SandboxClient(bot.sandbox_url)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose the call outcome to fixtures so they can dump process logs on failure."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


