"""Best effort: note in Redis when each msgId was ACKed, for the workers' message record."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import redis

log = logging.getLogger(__name__)


# One command for many keys: a pipeline of N `SET ... EX` costs ~17 µs of Python per key to encode
# and parse, this script ~2.5 µs; the listener shares one GIL with its socket readers.
# ARGV[1] is the TTL, ARGV[i + 1] the ACK time of KEYS[i].
_SET_ALL = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""
# Batches ACKed within this window share one Redis call (their own ACK times are kept).
LINGER_SECONDS = 0.05
MAX_KEYS_PER_CALL = 5000


class AckRecorder:
    """`SET {prefix}acked:{msg_id} <epoch> EX ttl` for every msgId of an ACKed batch, off the ACK path.

    A slow or absent Redis never delays an ACK: batches go through a bounded queue to this
    thread and are dropped (with a log line) when it is full.
    """

    def __init__(self, redis_url: str, key_prefix: str, ttl_seconds: int = 86400, max_batches: int = 1000) -> None:
        self.key_prefix = key_prefix
        self.ttl_seconds = ttl_seconds
        self._client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._set_all = self._client.register_script(_SET_ALL)
        self._queue: queue.Queue[tuple[list[str], float] | None] = queue.Queue(maxsize=max_batches)
        self._thread = threading.Thread(target=self._run, name="ingest-ackrecord", daemon=True)
        self._failing = False

    def key(self, msg_id: str) -> str:
        return f"{self.key_prefix}acked:{msg_id}"

    def start(self) -> None:
        self._thread.start()

    def record(self, msg_ids: list[str], acked_at: float) -> None:
        if not msg_ids:
            return
        try:
            self._queue.put_nowait((msg_ids, acked_at))
        except queue.Full:
            log.warning("ack record queue full; ack times not recorded for msgIds=%s", ",".join(msg_ids))

    def stop(self, timeout: float = 2.0) -> None:
        """Write what is queued (within `timeout`), then stop."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            time.sleep(LINGER_SECONDS)  # let the next few ACKed batches join this call
            batches = [item]
            keys = len(item[0])
            stop = False
            while keys < MAX_KEYS_PER_CALL:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batches.append(more)
                keys += len(more[0])
            self._write(batches)
            if stop:
                return

    def _write(self, batches: list[tuple[list[str], float]]) -> None:
        keys: list[str] = []
        args: list[Any] = [self.ttl_seconds]
        for msg_ids, acked_at in batches:
            stamp = repr(acked_at)
            for msg_id in msg_ids:
                keys.append(self.key(msg_id))
                args.append(stamp)
        try:
            self._set_all(keys=keys, args=args)
            if self._failing:
                log.info("ack records written again (Redis is back)")
                self._failing = False
        except redis.RedisError as exc:
            # One WARNING per outage, the rest at DEBUG: ACKs are not affected.
            level = logging.DEBUG if self._failing else logging.WARNING
            ids = ",".join(m for batch, _ in batches for m in batch)
            log.log(level, "cannot record ack times in Redis (%r) for msgIds=%s", exc, ids)
            self._failing = True
