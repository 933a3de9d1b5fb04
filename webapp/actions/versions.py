"""Version keys in Redis that tell every worker a setting or the router changed (bumped on commit)."""

from __future__ import annotations

import logging

import redis
from django.db import transaction

from webapp.clients import key, redis_client

log = logging.getLogger(__name__)

SETTINGS = "settings"  # skill settings, admin settings, remote skills
ROUTER = "router"  # the version string of the active router model


def version_key(scope: str) -> str:
    return key(f"version:{scope}")


def publish(scope: str, value: str | None = None) -> None:
    """Set (router) or increment (settings) the key now; workers also re-read on a timer, so a
    Redis outage only delays the change."""
    try:
        client = redis_client()
        if value is None:
            client.incr(version_key(scope))
        else:
            client.set(version_key(scope), value)
    except redis.RedisError as exc:
        log.warning("could not publish the %s version (workers pick it up on their timer): %r", scope, exc)


def publish_on_commit(scope: str, value: str | None = None) -> None:
    """Publish once the caller's transaction commits (never announce a change that rolled back)."""
    transaction.on_commit(lambda: publish(scope, value))


def read(scope: str) -> str | None:
    """The current value, or None when unset; raises redis errors for the caller to decide."""
    value = redis_client().get(version_key(scope))
    return None if value is None else str(value)
