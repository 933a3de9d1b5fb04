"""Fixtures for worker tests: settings bound to this test's Redis namespace, a broker vhost."""

from __future__ import annotations

from typing import Iterator

import pytest

from conf.settings import Settings, get_settings
from workers import runtime


@pytest.fixture
def worker_settings(redis_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose Redis keys live under this test's prefix (cleaned up afterwards)."""
    monkeypatch.setenv("REDIS_KEY_PREFIX", redis_prefix)
    monkeypatch.setenv("DINGTALK_CLIENT_ID", "test-client")
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", "test-secret")
    get_settings.cache_clear()
    runtime.reset_clients()
    yield get_settings()
    get_settings.cache_clear()
    runtime.reset_clients()


@pytest.fixture
def redis_conn(worker_settings: Settings):
    return runtime.redis_client()


@pytest.fixture(scope="session")
def celery_broker(amqp_url: str) -> Iterator[str]:
    """Point this process's Celery app at the private vhost (publishing only)."""
    from workers.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = amqp_url
    app._pool = None
    app.amqp._producer_pool = None
    yield amqp_url
    app.conf.broker_url = previous
    app._pool = None
    app.amqp._producer_pool = None
