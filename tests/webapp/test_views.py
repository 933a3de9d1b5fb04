"""/healthz reports the stores the bot needs (/metrics: tests/webapp/test_metrics.py)."""

from __future__ import annotations

import pytest

from testkit.services import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def settings_env(resources):
    """Environment overrides for the web process (applied and undone by the resources fixture)."""
    return resources.set


def test_healthz_is_ok_when_database_redis_and_broker_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {
        "database": "ok", "redis": "ok", "broker": "ok"}}


def test_healthz_is_503_when_the_broker_is_unreachable(client, settings_env):
    settings_env(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"].startswith("error")
    assert checks["database"] == "ok"


def test_healthz_is_503_when_redis_is_unreachable(client, settings_env):
    settings_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")
