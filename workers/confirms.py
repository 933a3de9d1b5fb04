"""Confirm-mode producers for the stage publishes (hand-off, retry, re-queue, parked dead letter).

Only these publishes wait for RabbitMQ's confirm. The app-wide transport options leave confirms off,
so the worker's event dispatcher (task events, heartbeats: one producer and one channel shared by
every pool thread under a mutex) never waits for one: py-amqp is not thread-safe, and a confirm
awaited on that shared channel could be lost and waited for forever (the PostgreSQL-outage stall,
celery#9259). Here each publish takes a producer, with its own connection and channel, from a pool
of this process for the duration of that one publish: no two threads ever share a confirm-mode
channel. On the Redis broker there are no confirms and the app's own producers are used.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from celery import Celery
from kombu import Producer
from kombu.pools import ProducerPool

# How long one publish waits for its confirm before it counts as failed (py-amqp waits forever
# without a bound); also the longest wait for a free producer of the pool.
CONFIRM_TIMEOUT_SECONDS = 10.0

_lock = threading.Lock()
_pools: dict[tuple[int, int, str], ProducerPool | None] = {}


def _pool(app: Celery) -> ProducerPool | None:
    """This process's pool for `app` and its broker, None on a broker without confirms (a forked
    child builds its own: sockets are never shared across processes)."""
    key = (os.getpid(), id(app), str(app.conf.broker_write_url or app.conf.broker_url))
    with _lock:
        if key not in _pools:
            options = {**(app.conf.broker_transport_options or {}), "confirm_publish": True}
            connection = app.connection_for_write(transport_options=options)
            limit = int(app.conf.broker_pool_limit or 10)
            _pools[key] = (ProducerPool(connection.Pool(limit=limit), limit=limit, Producer=app.amqp.Producer)
                           if connection.transport.driver_type == "amqp" else None)
        return _pools[key]


@contextlib.contextmanager
def confirmed_producer(app: Celery) -> Iterator[Producer | None]:
    """A confirm-mode producer held by this thread for one publish, or None (the app's own
    producers) on a broker without confirms. Pass it as `producer=` with CONFIRM_OPTIONS.

    A publish that failed (nack, return, timeout, lost connection) drops its connection: a late
    confirm must never be read as the confirm of the next publish on that channel.
    """
    pool = _pool(app)
    if pool is None:
        yield None
        return
    with pool.acquire(block=True, timeout=CONFIRM_TIMEOUT_SECONDS) as producer:
        try:
            yield producer
        except BaseException:
            with contextlib.suppress(Exception):
                producer.connection.collect()
            raise


# What every confirmed stage publish passes with its producer.
CONFIRM_OPTIONS: dict[str, Any] = {"confirm_timeout": CONFIRM_TIMEOUT_SECONDS}
