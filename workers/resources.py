"""The per-process resources container: clients, caches, the router and the Settings they were built from.

A worker builds one when its process starts (`workers.celery`'s signal handlers, after a fork
too); any other process (a script, a test, the web role calling a worker helper) gets one built
lazily by `current()`, and each part is only built when first used, so nothing there opens a
socket or starts a thread it does not need.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pybreaker
from redis import Redis, RedisError
from redis.exceptions import NoScriptError

from conf.settings import Settings, get_settings
from skills.remote.skill import Breakers
from workers.clock import SYSTEM_CLOCK, Clock
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.ratebudget import RateBudget
from workers.dingtalk.token import TokenCache
from workers.state.media_store import MediaStore

if TYPE_CHECKING:
    from skills.api import Turn
    from workers.routing.policy import Route
    from workers.skill_settings import SettingsCache, SkillDataCache
    from workers.state.cards import CancelFlags

log = logging.getLogger("workers.resources")


class Router(Protocol):
    """Turns a turn into a Route (workers.routing.routers); `stop()` if it runs a thread."""

    def route(self, turn: Turn) -> Route: ...


def setup_django() -> None:
    """Configure Django in this process (workers and scripts; the listener never calls this) and
    register the workers' per-user stores, which export, erasure and the retention task must cover."""
    from django.db.backends.signals import connection_created

    from webapp.actions.setup import setup_django as setup_webapp
    from workers.state.personal_data import register_stores

    setup_webapp()
    connection_created.connect(_relaxed_commits, dispatch_uid="dtbot-relaxed-commits")
    register_stores()


def _relaxed_commits(sender: object, connection: object, **_: object) -> None:
    """Worker commits do not wait for the WAL flush (~2 ms each, several per message).

    A PostgreSQL crash may lose the last fraction of a second of stage timestamps; the Redis
    claim and reply state still keep the message answered once. Dead letters, which must
    survive, switch durability back on for their own transaction.
    """
    if getattr(connection, "vendor", "") == "postgresql":
        with connection.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute("SET synchronous_commit TO OFF")


class Resources:
    """What the workers of one process share; parts are built on first use (thread-safe: Python
    3.11's cached_property builds each part once under its lock)."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.pid = os.getpid()  # a forked child must not use its parent's sockets
        # None = keyword routing; the worker start installs the trained router where preprocess runs.
        self.router: Router | None = None

    def key(self, name: str) -> str:
        """A Redis key in this deployment's namespace."""
        return f"{self.settings.redis_key_prefix}{name}"

    @cached_property
    def redis(self) -> Redis:
        """Strings in, strings out; every call has a timeout."""
        return Redis.from_url(self.settings.redis_url, decode_responses=True, socket_timeout=5,
                                    socket_connect_timeout=5, health_check_interval=30)

    @cached_property
    def redis_bytes(self) -> Redis:
        """For circuit breakers: pybreaker decodes the bytes itself, so this client must not."""
        return Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)

    @cached_property
    def http(self) -> httpx.Client:
        """The pooled HTTP client of DingTalk calls and media downloads."""
        timeout = self.settings.http_timeout_seconds
        return httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )

    @cached_property
    def dingtalk(self) -> DingTalkAPI:
        """The DingTalk API over the pooled client; its access token is shared through Redis."""
        s = self.settings
        api = DingTalkAPI(self.http, s.dingtalk_openapi_endpoint, s.dingtalk_client_id, s.dingtalk_client_secret)
        api.tokens = TokenCache(self.redis, self.key(f"dingtalk:token:{s.dingtalk_client_id}"), api.fetch_token)
        return api

    @cached_property
    def rate_budget(self) -> RateBudget:
        """The budget every worker shares (Redis token bucket per API family, DINGTALK_QPS_*)."""
        return RateBudget.from_settings(self.redis, self.settings, clock=self.clock)

    @cached_property
    def cancel_flags(self) -> CancelFlags:
        """Stop-button flags of AI cards (set by the card-callback handler, read by the streamer)."""
        from workers.state.cards import CancelFlags  # that module reaches Redis through this one

        return CancelFlags(self.redis, self.settings.redis_key_prefix)

    @cached_property
    def media_store(self) -> MediaStore:
        return MediaStore(self.settings.media_root)

    @cached_property
    def skill_settings(self) -> SettingsCache:
        """Tenant skill settings, admin knobs and remote skills, re-read when their version moves."""
        # Imported here: it reads Django models, which a process only loads once Django is set up.
        from workers.skill_settings import SettingsCache

        return SettingsCache(self)

    @cached_property
    def skill_data(self) -> SkillDataCache:
        """An LRU for skill data, emptied when the settings version moves."""
        from workers.skill_settings import SkillDataCache

        return SkillDataCache(self)

    @cached_property
    def breakers(self) -> Breakers:
        """Remote skills' circuit breakers, their state in Redis so every process opens together."""
        return Breakers(self.breaker_storage)

    def breaker_storage(self, name: str, url: str) -> pybreaker.CircuitBreakerStorage:
        """Where the breaker of one remote (name, URL) keeps its state."""
        digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:10]
        try:
            return pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, self.redis_bytes, namespace=self.key(f"breaker:{name}:{digest}"),
                # Redis lost later: behave as closed (try the remote) rather than refuse every call.
                fallback_circuit_state=pybreaker.STATE_CLOSED,
            )
        except RedisError as exc:
            # Redis down at creation: this process keeps its own breaker rather than fail the turn.
            log.warning("breaker of remote skill %s kept in memory, Redis unreachable: %r", name, exc)
            return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)

    def close(self) -> None:
        """Stop the router's thread and close the clients this container opened."""
        stop = getattr(self.router, "stop", None)
        if callable(stop):
            stop()
        parts = self.__dict__
        if "http" in parts:
            parts["http"].close()
        for name in ("redis", "redis_bytes"):
            if name in parts:
                parts[name].close()


_current: Resources | None = None


def current() -> Resources:
    """This process's resources: the installed container, else one built from the environment
    (again after a fork: a child never talks on its parent's sockets)."""
    res = _current
    if res is None or res.pid != os.getpid():
        res = Resources(get_settings())
        install(res)
    return res


def install(res: Resources | None) -> Resources | None:
    """Make `res` this process's container (None: build one lazily next time); returns the one it
    replaces, which the caller closes if it is done with it."""
    global _current
    previous, _current = _current, res
    return previous


class LuaScript:
    """A Lua script run by its SHA1 (EVALSHA) on this process's Redis client: the script text
    crosses the wire once per server (loaded on the first NOSCRIPT), not with every call."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __call__(self, keys: Sequence[str], args: Sequence[Any], client: Redis | None = None) -> Any:
        client = client or current().redis
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a fresh or restarted Redis: load it, then run it
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)
