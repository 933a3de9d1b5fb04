"""Webapp tests reuse the worker fixtures (settings bound to a Redis namespace, broker vhost)."""

from tests.workers.conftest import (  # noqa: F401
    broker_queues,
    celery_broker,
    redis_conn,
    worker_settings,
)
