"""Readiness checks of the web (/readyz): PostgreSQL, Redis, the Celery broker, a connected listener."""

from __future__ import annotations

import json
from collections.abc import Callable

import redis

from conf.settings import get_settings
from contract import keys

CHECK_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> redis.Redis:
    return redis.Redis.from_url(
        get_settings().redis_url, socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )


def check_redis() -> None:
    client = _redis()
    try:
        client.ping()
    finally:
        client.close()


class NoListenerReady(Exception):
    """No listener has written a fresh readiness key saying it is connected to DingTalk."""


def check_listener() -> None:
    """Ready when at least one listener's heartbeat (ingest/heartbeat.py, a key with a TTL) says
    ready: a Stream connection open and its journal not full. A dead listener's key has expired."""
    prefix = get_settings().redis_key_prefix
    client = _redis()
    try:
        instances = sorted(m.decode() if isinstance(m, bytes) else m for m in client.smembers(prefix + keys.LISTENERS))
        values = client.mget([prefix + keys.listener_ready(i) for i in instances]) if instances else []
        states: dict[str, str] = {}
        for instance, raw in zip(instances, values, strict=True):
            if raw is None:
                client.srem(prefix + keys.LISTENERS, instance)  # expired: that process is gone
                continue
            state = json.loads(raw)
            if state.get("ready"):
                return
            states[instance] = f"stream {state.get('stream')}, broker {state.get('broker')}"
    finally:
        client.close()
    raise NoListenerReady(f"no listener connected ({states or 'none running'})")


def check_broker() -> None:
    from kombu import Connection

    url = get_settings().celery_broker_url
    with Connection(url, connect_timeout=CHECK_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, timeout=CHECK_TIMEOUT_SECONDS
        )


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
    "listener": check_listener,
}


def run_checks() -> dict[str, str]:
    """{name: "ok" | "error: ..."} for every check."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a health check reports failures, it never raises
            results[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    return results
