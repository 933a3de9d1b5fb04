"""Isolated resources on the shared local services: a RabbitMQ vhost, a Redis key prefix, free ports."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from collections.abc import Iterator

RABBIT_HOST = "127.0.0.1:5672"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def rabbit_vhost(prefix: str = "dtbot-test") -> Iterator[str]:
    """A fresh RabbitMQ vhost for guest; yields its amqp:// URL and deletes it afterwards."""
    name = unique_name(prefix)
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBIT_HOST}/{name}"
    finally:
        with contextlib.suppress(Exception):
            _rabbitmqctl("delete_vhost", name)


@contextlib.contextmanager
def redis_namespace(url: str = "redis://127.0.0.1:6379/0") -> Iterator[str]:
    """A unique key prefix on the shared Redis; its keys are deleted afterwards."""
    import redis

    prefix = unique_name("test") + ":"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        with contextlib.suppress(Exception):
            for key in client.scan_iter(match=prefix + "*", count=1000):
                client.delete(key)
        client.close()


@contextlib.contextmanager
def redis_broker_db(host: str = "127.0.0.1:6379") -> Iterator[str]:
    """A Redis broker URL on a database number picked for this run; flushed afterwards.

    Databases 10-15 are reserved for broker tests; the one with no keys is taken.
    """
    import redis

    for db in range(10, 16):
        client = redis.Redis.from_url(f"redis://{host}/{db}")
        # SETNX a claim so two concurrent test runs do not share a broker database.
        if client.set("dtbot-test-broker-claim", "1", nx=True, ex=3600):
            try:
                yield f"redis://{host}/{db}"
            finally:
                client.flushdb()
                client.close()
            return
        client.close()
    raise RuntimeError("no free Redis database (10-15) for a broker test")
