"""Per-process view of skill settings, admin knobs and remote skills, and an LRU for skill data; re-read when their version changes.

Admin actions bump the settings version (`webapp.actions.versions`, SETTINGS scope: skill and
admin settings, remote skills, profile edits, erasures) after their transaction commits; every process
compares the version it cached under at most once per SKILL_CACHE_CHECK_SECONDS and clears its
caches when it moved. Staleness is therefore bounded by that interval, and a Redis outage only
means entries are served until it returns (the loader still works).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Callable, Hashable, TypeVar

import redis
from cachetools import LRUCache
from django.db import DatabaseError

from conf.settings import get_settings
from skills import registry
from skills.api import AISkillPlugin, ConfigError
from skills.remote.skill import RemoteSkill, RemoteSkillConfig
from webapp.actions import versions
from webapp.actions.settings_snapshot import ALL_TENANTS, Snapshot, read_snapshot
from workers.resources import redis_client

log = logging.getLogger(__name__)

# Even without a version bump (Redis was down when an admin saved), re-read this often.
MAX_AGE_SECONDS = 60.0


class SettingsCache:
    """The snapshot of this process, checked against the Redis version at most every few seconds."""

    def __init__(self, check_seconds: float | None = None) -> None:
        self.check_seconds = get_settings().settings_check_seconds if check_seconds is None else check_seconds
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._version: str | None = None
        self._checked_at = 0.0
        self._loaded_at = 0.0
        # One instance per distinct configuration; old configurations age out.
        self._instances: LRUCache[tuple[str, str], AISkillPlugin] = LRUCache(maxsize=64)

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        with self._lock:
            if self._snapshot is not None and now - self._checked_at < self.check_seconds:
                return self._snapshot
            self._checked_at = now
            version = self._remote_version()
            stale = now - self._loaded_at >= MAX_AGE_SECONDS
            if self._snapshot is None or stale or (version is not None and version != self._version):
                try:
                    self._snapshot = read_snapshot()
                    self._version, self._loaded_at = version, now
                except DatabaseError:
                    if self._snapshot is None:
                        raise  # nothing to serve from: let the stage retry
                    log.warning("could not re-read skill settings; keeping the previous ones", exc_info=True)
            return self._snapshot

    def invalidate(self) -> None:
        with self._lock:
            self._snapshot, self._checked_at = None, 0.0

    @staticmethod
    def _remote_version() -> str | None:
        try:
            return versions.read(versions.SETTINGS) or "0"
        except redis.RedisError:
            return None  # unknown: keep what we have until MAX_AGE

    # -- what the pipeline asks ----------------------------------------------------------------------

    def enabled_skills(self, tenant_id: str, conversation_id: str = "") -> set[str]:
        """Skills that may answer in this tenant (and conversation: its kill switches): enabled, and
        for chat an LLM to talk to."""
        names = {n for n in registry.skill_names() if self.allows(tenant_id, n, conversation_id)}
        if not (registry.llm_configured() or self.skill_overrides(tenant_id, "llm_chat").get("base_url")):
            names.discard("llm_chat")  # chat messages then go to the fallback instead of "not configured"
        names.update(n for n in self.snapshot().remotes if self.allows(tenant_id, n, conversation_id))
        return names

    def allows(self, tenant_id: str, skill: str, conversation_id: str = "") -> bool:
        """Whether the settings let `skill` answer here (run_skill asks again: a kill switch also stops
        messages routed before it was set)."""
        snap = self.snapshot()
        remote = snap.remotes.get(skill)
        if remote is not None and skill not in registry.SKILLS and not remote.enabled:
            return False
        return snap.enabled_in(tenant_id, skill, conversation_id)

    def catalog(self, tenant_id: str, conversation_id: str = "") -> dict[str, str]:
        """{skill: help text} of the skills enabled here, remote ones by their description."""
        remotes = self.snapshot().remotes
        return {
            name: registry.skill_class(name).help_text() if name in registry.SKILLS
            else (remotes[name].description or name)
            for name in self.enabled_skills(tenant_id, conversation_id)
        }

    def intent_map(self) -> dict[str, str]:
        """{intent: skill} of built-in and remote skills (enabled or not)."""
        mapping = dict(registry.intent_map())
        for spec in self.snapshot().remotes.values():
            for intent in spec.intents:
                mapping.setdefault(intent, spec.name)
        return mapping

    def knob(self, key: str) -> Any:
        return self.snapshot().knob(key)

    def fallback_skill(self, tenant_id: str, conversation_id: str = "") -> str:
        return registry.fallback_skill(self.enabled_skills(tenant_id, conversation_id))

    def skill_overrides(self, tenant_id: str, name: str) -> dict[str, Any]:
        """Config overrides: admin knobs of this skill, then the * row, then the tenant's own row."""
        snap = self.snapshot()
        merged: dict[str, Any] = snap.skill_knobs(name)
        merged.update(snap.skills.get((ALL_TENANTS, name), (True, {}))[1])
        if tenant_id != ALL_TENANTS:
            merged.update(snap.skills.get((tenant_id, name), (True, {}))[1])
        return merged

    def skill(self, tenant_id: str, name: str) -> AISkillPlugin:
        """The instance answering for `name` in this tenant, built once per distinct configuration."""
        snap = self.snapshot()
        if name in snap.remotes and name not in registry.SKILLS:
            spec = snap.remotes[name]
            cache_key = (name, f"remote:{spec.version}")
            build = lambda: RemoteSkill(RemoteSkillConfig(  # noqa: E731
                name=spec.name, url=spec.url, token=spec.token, timeout_seconds=spec.timeout_seconds,
                intents=spec.intents, description=spec.description))
        else:
            overrides = self.skill_overrides(tenant_id, name)
            cache_key = (name, json.dumps(overrides, sort_keys=True, default=str))
            build = lambda: self._build_builtin(name, overrides)  # noqa: E731
        with self._lock:
            instance = self._instances.get(cache_key)
        if instance is None:
            instance = build()
            with self._lock:
                instance = self._instances.setdefault(cache_key, instance)
        return instance

    @staticmethod
    def _build_builtin(name: str, overrides: dict[str, Any]) -> AISkillPlugin:
        try:
            return registry.build(name, overrides)
        except ConfigError as exc:
            # Saved through the validating action, so the schema changed under it (an upgrade).
            log.error("stored config of %s no longer validates (%s); using its defaults", name, exc)
            return registry.build(name, {})


_cache: SettingsCache | None = None
_cache_lock = threading.Lock()


def cache() -> SettingsCache:
    """This process's cache (created on first use)."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = SettingsCache()
        return _cache


def reset() -> None:
    """Forget the cache (tests that change settings between cases)."""
    global _cache
    with _cache_lock:
        _cache = None


# --- skill data: an LRU per process, emptied when the settings version moves -------------------

V = TypeVar("V")


def version_key() -> str:
    """The same key the skill-settings snapshot of the workers watches."""
    return versions.version_key(versions.SETTINGS)


def bump_settings_version() -> int:
    """Invalidate every process's skill-data cache now (admin actions use versions.publish_on_commit)."""
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
        except redis.RedisError as exc:
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
    pid = os.getpid()
    with _shared_lock:
        if _shared is None or _shared[0] != pid:
            _shared = (pid, SkillDataCache())
        return _shared[1]
