"""A per-process LRU cache for skill data, emptied when an admin changes settings (Redis version key).

Admin actions bump `{prefix}settings:version` (after their transaction commits); every process
compares the version it cached under at most once per SKILL_CACHE_CHECK_SECONDS and clears its
cache when it moved. Staleness is therefore bounded by that interval, and a Redis outage only
means entries are served until it returns (the loader still works).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Hashable, TypeVar

import redis as redis_lib
from cachetools import LRUCache

from conf.settings import get_settings
from workers.runtime import key, redis_client

log = logging.getLogger(__name__)
V = TypeVar("V")


def version_key() -> str:
    return key("settings:version")


def bump_settings_version() -> int:
    """Invalidate every process's skill-data cache (call after an admin change commits)."""
    return int(redis_client().incr(version_key()))


class SkillDataCache:
    """get_or_load(key, loader): LRU, thread-safe, invalidated by the settings version."""

    def __init__(
        self,
        maxsize: int | None = None,
        check_seconds: float | None = None,
        version_reader: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        settings = get_settings()
        self._cache: LRUCache[Hashable, object] = LRUCache(maxsize or settings.skill_cache_size)
        self._check_seconds = settings.skill_cache_check_seconds if check_seconds is None else check_seconds
        self._read_version = version_reader or (lambda: redis_client().get(version_key()))
        self._clock = clock
        self._lock = threading.Lock()
        self._version: str | None = None
        self._checked_at = float("-inf")
        self.loads = 0
        self.invalidations = 0

    def _check_version(self) -> None:
        now = self._clock()
        if now - self._checked_at < self._check_seconds:
            return
        self._checked_at = now
        try:
            version = self._read_version() or "0"
        except redis_lib.RedisError as exc:
            log.warning("cannot read the settings version, keeping the cache: %r", exc)
            return
        if version != self._version:
            if self._version is not None:
                self.invalidations += 1
            self._cache.clear()
            self._version = version

    def get_or_load(self, cache_key: Hashable, loader: Callable[[], V]) -> V:
        with self._lock:
            self._check_version()
            if cache_key in self._cache:
                return self._cache[cache_key]  # type: ignore[return-value]
        value = loader()  # outside the lock: a slow loader must not block other keys
        with self._lock:
            self._cache[cache_key] = value
            self.loads += 1
        return value

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


_shared: tuple[int, SkillDataCache] | None = None
_shared_lock = threading.Lock()


def skill_data_cache() -> SkillDataCache:
    """The cache of this process (a fresh one after fork)."""
    global _shared
    import os

    pid = os.getpid()
    with _shared_lock:
        if _shared is None or _shared[0] != pid:
            _shared = (pid, SkillDataCache())
        return _shared[1]
