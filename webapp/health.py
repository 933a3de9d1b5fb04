"""Reachability checks of the stores the bot needs: PostgreSQL, Redis, the Celery broker."""

from __future__ import annotations

from collections.abc import Callable

from conf.settings import get_settings

CHECK_TIMEOUT_SECONDS = 2.0


def check_database() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_redis() -> None:
    import redis

    client = redis.Redis.from_url(
        get_settings().redis_url, socket_timeout=CHECK_TIMEOUT_SECONDS,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


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
