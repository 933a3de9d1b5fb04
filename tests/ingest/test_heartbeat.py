"""The listener's readiness heartbeat: a Redis key with a TTL that follows its health, never blocking it."""

from __future__ import annotations

import json
import logging

import pytest
import redis

from contract import keys
from ingest.health import Health
from ingest.heartbeat import TTL_INTERVALS, ReadinessHeartbeat
from testkit.services import free_port
from testkit.waits import wait_for

REDIS_URL = "redis://127.0.0.1:6379/0"


class Switch:
    """The listener's health as a test sets it."""

    def __init__(self) -> None:
        self.ready = False

    def __call__(self) -> Health:
        return Health(live=True, ready=self.ready,
                      detail={"stream": "connected" if self.ready else "connecting", "broker": "up"})


@pytest.mark.integration
def test_the_key_follows_the_listeners_health_and_goes_at_stop(redis_prefix):
    r = redis.Redis.from_url(REDIS_URL)
    health = Switch()
    heartbeat = ReadinessHeartbeat(REDIS_URL, redis_prefix, health, interval=0.1, instance="h:1")
    key = redis_prefix + keys.listener_ready("h:1")
    heartbeat.start()
    try:
        wait_for(lambda: r.get(key) is not None, 5, "the first beat")
        assert json.loads(r.get(key) or b"{}")["ready"] is False
        assert 0 < r.pttl(key) <= 100 * TTL_INTERVALS
        assert r.smembers(redis_prefix + keys.LISTENERS) == {b"h:1"}
        health.ready = True
        wait_for(lambda: json.loads(r.get(key) or b"{}").get("ready") is True, 5, "a beat saying ready")
        assert json.loads(r.get(key) or b"{}")["stream"] == "connected"
    finally:
        heartbeat.stop()
    assert r.get(key) is None
    assert not r.smembers(redis_prefix + keys.LISTENERS)


def test_redis_down_skips_beats_with_one_warning_and_stop_still_returns(caplog):
    url = f"redis://127.0.0.1:{free_port()}/0"
    calls = []

    def check() -> Health:
        calls.append(1)
        return Health(live=True, ready=True)

    heartbeat = ReadinessHeartbeat(url, "t:", check, interval=0.05)
    with caplog.at_level(logging.WARNING, logger="ingest.heartbeat"):
        heartbeat.start()
        wait_for(lambda: len(calls) >= 3, 10, "three beats tried")
        heartbeat.stop()
    warnings = [r for r in caplog.records if "heartbeat not written" in r.getMessage()]
    assert len(warnings) == 1


def test_interval_zero_writes_nothing():
    heartbeat = ReadinessHeartbeat(f"redis://127.0.0.1:{free_port()}/0", "t:", Switch(), interval=0)
    heartbeat.start()
    assert heartbeat._thread is None
    heartbeat.stop()
