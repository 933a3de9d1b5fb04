"""The webapp's own clients of the shared stores: Redis and a Celery app that only publishes.

The web role, management commands and the actions the workers call use these; nothing here
imports worker code. One client per URL and process: redis-py's pool and Celery's producer pool
reconnect by themselves after a fork, and a test that points the settings elsewhere gets a
client for the new URL instead of a stale one.
"""

from __future__ import annotations

from functools import lru_cache

import kombu
import redis
from celery import Celery

from conf.settings import get_settings
from contract.pipeline import EXCHANGE, QUEUE_NAMES


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30,
    )


def redis_client() -> redis.Redis:
    """The Redis client of this process for REDIS_URL (strings in, strings out)."""
    return _redis(get_settings().redis_url)


def key(name: str) -> str:
    """A Redis key in this deployment's namespace (REDIS_KEY_PREFIX), as the workers spell it."""
    return f"{get_settings().redis_key_prefix}{name}"


@lru_cache(maxsize=4)
def _publisher(broker_url: str) -> Celery:
    # A plain app: no task modules, no Django fix-up, not the process's current app. Queues are
    # declared exactly as the workers declare them, so publishing never creates a different one.
    app = Celery("dtbot-web", broker=broker_url, fixups=[], set_as_current=False)
    exchange = kombu.Exchange(EXCHANGE, type="direct", durable=True)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_default_delivery_mode="persistent",
        task_queues=[kombu.Queue(name, exchange, routing_key=name, durable=True) for name in QUEUE_NAMES],
        task_create_missing_queues=False,
    )
    if not broker_url.startswith(("redis://", "rediss://")):
        # A replay's publish returns only once RabbitMQ confirmed it (the replay mark rolls back
        # otherwise); `mandatory` is passed per publish (webapp.actions.deadletters).
        app.conf.broker_transport_options = {"confirm_publish": True}
    return app


def publisher() -> Celery:
    """A Celery app on CELERY_BROKER_URL that sends pipeline task messages by name."""
    return _publisher(get_settings().celery_broker_url)
