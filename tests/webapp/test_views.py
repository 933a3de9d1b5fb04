"""/healthz is liveness, /readyz reports the stores and the listener (/metrics: tests/webapp/test_metrics.py)."""

from __future__ import annotations

import pytest

from ingest.health import Health
from ingest.heartbeat import ReadinessHeartbeat
from testkit.services import free_port
from testkit.tcpproxy import tcp_proxy

pytestmark = pytest.mark.django_db


@pytest.fixture
def settings_env(resources):
    """Environment overrides for the web process (applied and undone by the resources fixture)."""
    return resources.set


@pytest.fixture
def listener_beat(resources, redis_prefix):
    """A listener's readiness heartbeat (ingest/heartbeat.py) under this test's prefix; `beat(ready)`
    writes one state as a listener would."""
    beats = []

    def beat(ready: bool, instance: str = "listener-host:1") -> ReadinessHeartbeat:
        health = Health(live=True, ready=ready, detail={"stream": "connected" if ready else "connecting",
                                                        "broker": "up"})
        heartbeat = ReadinessHeartbeat(resources.settings.redis_url, redis_prefix, lambda: health,
                                       interval=5.0, instance=instance)
        heartbeat.beat()
        beats.append(heartbeat)
        return heartbeat

    yield beat
    for heartbeat in beats:
        heartbeat.stop()


def test_healthz_is_liveness_only_and_calls_no_store(client, settings_env):
    unreachable = free_port()
    settings_env(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{unreachable}//",
                 REDIS_URL=f"redis://127.0.0.1:{unreachable}/0")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_stores_answer_and_a_listener_is_connected(client, listener_beat):
    listener_beat(ready=True)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json() == {"status": "ok", "checks": {
        "database": "ok", "redis": "ok", "broker": "ok", "listener": "ok"}}


def test_readyz_is_503_without_a_listener_or_with_one_still_connecting(client, listener_beat):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["listener"] == "error: NoListenerReady: no listener connected (none running)"
    listener_beat(ready=False)
    checks = client.get("/readyz").json()["checks"]
    assert checks["listener"].startswith("error: NoListenerReady")
    assert "stream connecting" in checks["listener"]
    assert checks["database"] == checks["redis"] == checks["broker"] == "ok"
    listener_beat(ready=True, instance="standby-host:2")  # one connected listener is enough
    assert client.get("/readyz").status_code == 200


def test_readyz_forgets_a_listener_whose_key_expired_or_that_stopped(client, listener_beat, redis_prefix, resources):
    import redis

    from contract import keys

    heartbeat = listener_beat(ready=True)
    assert client.get("/readyz").status_code == 200
    r = redis.Redis.from_url(resources.settings.redis_url)
    r.delete(redis_prefix + keys.listener_ready(heartbeat.instance))  # what the TTL does to a dead one
    assert client.get("/readyz").status_code == 503
    assert not r.sismember(redis_prefix + keys.LISTENERS, heartbeat.instance)  # pruned
    listener_beat(ready=True).stop()  # a clean shutdown removes its key at once
    assert client.get("/readyz").status_code == 503


def test_readyz_is_503_when_the_broker_is_unreachable(client, settings_env, listener_beat):
    listener_beat(ready=True)
    settings_env(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"].startswith("error")
    assert checks["database"] == "ok"


def test_readyz_follows_redis_through_an_outage(client, settings_env, listener_beat, resources):
    listener_beat(ready=True)
    host, port = "127.0.0.1", int(resources.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    with tcp_proxy(host, port) as proxy:
        settings_env(REDIS_URL=proxy.url_for(resources.settings.redis_url))
        assert client.get("/readyz").status_code == 200
        proxy.cut()
        checks = client.get("/readyz").json()["checks"]
        assert checks["redis"].startswith("error") and checks["listener"].startswith("error")
        assert checks["database"] == checks["broker"] == "ok"
        proxy.restore()
        assert client.get("/readyz").status_code == 200
