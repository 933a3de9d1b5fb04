"""Per-process clients (Redis, HTTP, breaker state) built lazily per pid; Django set-up for workers."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from typing import Any, Sequence

import httpx
import pybreaker
import redis
from redis.exceptions import NoScriptError

from conf.settings import get_settings
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.ratebudget import RateBudget
from workers.dingtalk.token import TokenCache

log = logging.getLogger("workers.resources")
_lock = threading.Lock()
_redis: tuple[int, redis.Redis] | None = None
_http: tuple[int, httpx.Client] | None = None


def setup_django() -> None:
    """Configure Django in this process (workers only; the listener never calls this) and register
    the workers' per-user stores, which export, erasure and the retention task must cover."""
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


def redis_client() -> redis.Redis:
    """The Redis client of this process (a fresh pool after fork: sockets are not shared)."""
    global _redis
    pid = os.getpid()
    if _redis is None or _redis[0] != pid:
        with _lock:
            if _redis is None or _redis[0] != pid:
                settings = get_settings()
                client = redis.Redis.from_url(
                    settings.redis_url,
                    decode_responses=True,
                    socket_timeout=5,
                    socket_connect_timeout=5,
                    health_check_interval=30,
                )
                _redis = (pid, client)
    return _redis[1]


def breaker_storage(name: str, url: str) -> pybreaker.CircuitBreakerStorage:
    """A remote skill's circuit-breaker state in Redis, so every worker process opens together."""
    settings = get_settings()
    # pybreaker decodes the bytes itself: this client must not decode responses.
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:10]
    try:
        return pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, client, namespace=f"{settings.redis_key_prefix}breaker:{name}:{digest}",
            # Redis lost later: behave as closed (try the remote) rather than refuse every call.
            fallback_circuit_state=pybreaker.STATE_CLOSED,
        )
    except redis.RedisError as exc:
        # Redis down at creation: this process keeps its own breaker rather than fail the turn.
        log.warning("breaker of remote skill %s kept in memory, Redis unreachable: %r", name, exc)
        return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)


def http_client() -> httpx.Client:
    """The pooled HTTP client of this process; every call has a timeout."""
    global _http
    pid = os.getpid()
    if _http is None or _http[0] != pid:
        with _lock:
            if _http is None or _http[0] != pid:
                timeout = get_settings().http_timeout_seconds
                client = httpx.Client(
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                    limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                )
                _http = (pid, client)
    return _http[1]


def reset_clients() -> None:
    """Forget this process's clients (called after fork and by tests that change settings)."""
    global _redis, _http
    with _lock:
        _redis = None
        _http = None


class LuaScript:
    """A Lua script run by its SHA1 (EVALSHA) on this process's Redis client: the script text
    crosses the wire once per server (loaded on the first NOSCRIPT), not with every call."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = redis_client()
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:  # a fresh or restarted Redis: load it, then run it
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


def key(name: str) -> str:
    """A Redis key in this deployment's namespace."""
    return f"{get_settings().redis_key_prefix}{name}"


def dingtalk_api() -> DingTalkAPI:
    """The DingTalk API of this process (pooled HTTP client, token shared through Redis)."""
    settings = get_settings()
    api = DingTalkAPI(
        http_client(),
        settings.dingtalk_openapi_endpoint,
        settings.dingtalk_client_id,
        settings.dingtalk_client_secret,
    )
    api.tokens = TokenCache(
        redis_client(), key(f"dingtalk:token:{settings.dingtalk_client_id}"), api.fetch_token
    )
    return api


def rate_budget() -> RateBudget:
    """The budget every worker shares (Redis token bucket per API family, DINGTALK_QPS_*)."""
    return RateBudget.from_settings(redis_client(), get_settings())
