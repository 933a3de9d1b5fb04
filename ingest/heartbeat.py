"""The listener's readiness in Redis (contract.keys), refreshed on a timer, so the web's /readyz can see it."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import redis

from contract import keys
from ingest.health import Health

log = logging.getLogger(__name__)

# A key outlives its writer by this many intervals: one late beat does not flip readiness.
TTL_INTERVALS = 3


def instance_name() -> str:
    """host:pid: unique per listener process on a host and per container in compose."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ReadinessHeartbeat:
    """Every `interval` seconds writes `check()` to `{prefix}ingest:ready:<instance>` (TTL 3
    intervals) on its own thread; Redis being down only skips beats (ACKs never wait on it)."""

    def __init__(self, redis_url: str, prefix: str, check: Callable[[], Health], interval: float,
                 instance: str | None = None) -> None:
        self.interval = interval
        self.instance = instance or instance_name()
        self._prefix = prefix
        self._check = check
        self._key = prefix + keys.listener_ready(self.instance)
        timeout = max(0.2, min(2.0, interval / 2))
        self._client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="ingest-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the key at once (a stopped listener is not ready)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 3)
        try:
            self._client.delete(self._key)
            self._client.srem(self._prefix + keys.LISTENERS, self.instance)
        except redis.RedisError:
            pass  # the key expires by itself
        self._client.close()

    def beat(self) -> None:
        health = self._check()
        value = json.dumps({
            "ready": health.ready, "live": health.live, "stream": health.detail.get("stream"),
            "broker": health.detail.get("broker"), "at": time.time(),
        })
        ttl_ms = int(self.interval * TTL_INTERVALS * 1000)
        with self._client.pipeline(transaction=False) as pipe:
            pipe.set(self._key, value, px=ttl_ms)
            pipe.sadd(self._prefix + keys.LISTENERS, self.instance)
            pipe.execute()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
                if self._failing:
                    log.info("readiness heartbeat written to Redis again")
                self._failing = False
            except redis.RedisError as exc:
                if not self._failing:
                    log.warning("readiness heartbeat not written (Redis: %s); /readyz of the web will say so", exc)
                self._failing = True
            self._stop.wait(self.interval)
