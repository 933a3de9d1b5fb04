"""Per-process view of skill settings, admin knobs and remote skills (building the skills), and an LRU
for skill data; re-read when their version changes.

Admin actions bump the settings version (`webapp.actions.versions`, SETTINGS scope: skill and
admin settings, remote skills, profile edits, erasures) after their transaction commits; every process
compares the version it cached under at most once per SKILL_CACHE_CHECK_SECONDS and clears its
caches when it moved. Staleness is therefore bounded by that interval, and a Redis outage only
means entries are served until it returns (the loader still works).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis
from cachetools import LRUCache
from django.db import DatabaseError

from conf.settings import Settings
from skills import registry
from skills.api import AISkillPlugin, ConfigError
from skills.remote.skill import RemoteSkill, RemoteSkillConfig
from webapp.actions import versions
from webapp.actions.settings_snapshot import ALL_TENANTS, Snapshot, read_snapshot

if TYPE_CHECKING:
    from workers.resources import Resources

log = logging.getLogger(__name__)

# Even without a version bump (Redis was down when an admin saved), re-read this often.
MAX_AGE_SECONDS = 60.0


def environment_defaults(name: str, settings: Settings) -> dict[str, Any]:
    """The Config values of built-in skill `name` that come from the environment (LLM_*, the vector
    database); a tenant's overrides go on top of them."""
    s = settings
    if name == "llm_chat":
        return {"base_url": s.llm_base_url, "api_key": s.llm_api_key, "model": s.llm_model,
                "max_tokens": s.llm_max_tokens, "read_timeout_seconds": s.llm_read_timeout_seconds}
    if name == "docsearch":
        return {"vector_database_url": s.vector_database_url, "pgvector_data_dir": s.pgvector_data_dir,
                "embed_threads": s.embed_threads, "llm_base_url": s.llm_base_url, "llm_api_key": s.llm_api_key,
                "llm_model": s.llm_model, "llm_max_tokens": s.llm_max_tokens}
    return {}


def collaborators(name: str) -> dict[str, Any]:
    """What built-in skill `name` is handed besides its Config (schedule: the reminder store)."""
    if name == "schedule":
        from webapp.actions.reminder_store import DjangoReminderStore  # Django models: imported on use

        return {"store": DjangoReminderStore()}
    return {}


class SettingsCache:
    """The snapshot of this process, checked against the Redis version at most every few seconds."""

    def __init__(self, res: Resources, check_seconds: float | None = None) -> None:
        self.res = res
        self.check_seconds = res.settings.settings_check_seconds if check_seconds is None else check_seconds
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._version: str | None = None
        self._checked_at = 0.0
        self._loaded_at = 0.0
        # One instance per distinct configuration; old configurations age out.
        self._instances: LRUCache[tuple[str, str], AISkillPlugin] = LRUCache(maxsize=64)

    def snapshot(self) -> Snapshot:
        now = self.res.clock.monotonic()
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
        if not (self.llm_configured or self.skill_overrides(tenant_id, "llm_chat").get("base_url")):
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

    @property
    def llm_configured(self) -> bool:
        """Whether LLM_BASE_URL names a server (a tenant may still set its own)."""
        return bool(self.res.settings.llm_base_url)

    def fallback_skill(self, tenant_id: str, conversation_id: str = "") -> str:
        return registry.fallback_skill(self.enabled_skills(tenant_id, conversation_id),
                                       llm_configured=self.llm_configured)

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
        build: Callable[[], AISkillPlugin]
        if name in snap.remotes and name not in registry.SKILLS:
            spec = snap.remotes[name]
            cache_key = (name, f"remote:{spec.version}")
            build = lambda: RemoteSkill(RemoteSkillConfig(  # noqa: E731
                name=spec.name, url=spec.url, token=spec.token, timeout_seconds=spec.timeout_seconds,
                intents=spec.intents, description=spec.description,
                allowlist=self.res.settings.outbound_url_allowlist,
                token_needs_https=self.res.settings.django_secure), breakers=self.res.breakers)
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

    def _build_builtin(self, name: str, overrides: dict[str, Any]) -> AISkillPlugin:
        defaults = environment_defaults(name, self.res.settings)
        try:
            return registry.build(name, {**defaults, **overrides}, **collaborators(name))
        except ConfigError as exc:
            # Saved through the validating action, so the schema changed under it (an upgrade).
            log.error("stored config of %s no longer validates (%s); using its defaults", name, exc)
            return registry.build(name, defaults, **collaborators(name))


# --- skill data: an LRU per process, emptied when the settings version moves -------------------

V = TypeVar("V")


def version_key() -> str:
    """The same key the skill-settings snapshot of the workers watches."""
    return versions.version_key(versions.SETTINGS)


def bump_settings_version(res: Resources) -> int:
    """Invalidate every process's skill-data cache now (admin actions use versions.publish_on_commit)."""
    return int(res.redis.incr(version_key()))


class SkillDataCache:
    """get_or_load(key, loader): LRU, thread-safe, invalidated by the settings version."""

    def __init__(
        self,
        res: Resources,
        maxsize: int | None = None,
        check_seconds: float | None = None,
        version_reader: Callable[[], str | None] | None = None,
    ) -> None:
        settings = res.settings
        self._cache: LRUCache[Hashable, object] = LRUCache(maxsize or settings.skill_cache_size)
        self._check_seconds = settings.skill_cache_check_seconds if check_seconds is None else check_seconds
        # A decode_responses client: strings (redis-py's types cannot say so).
        self._read_version = version_reader or (lambda: cast("str | None", res.redis.get(version_key())))
        self._clock = res.clock.monotonic
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

