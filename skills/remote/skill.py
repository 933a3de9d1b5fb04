"""RemoteSkill: POST the turn dict, read the reply dict; bounded retries, a circuit breaker, polite failures.

Contract (see README "Remote skills"): request body = `Turn.to_dict()`, optional header
`Authorization: Bearer <token>`; 200 → a `Reply` dict (`text` required); 4xx with
`{"user_message": ...}` → that message is shown, nothing is retried; 5xx, timeouts and connection
errors are transient: retried, and they count towards opening the breaker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pybreaker
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from skills.api import AISkillPlugin, Reply, SkillConfig, SkillError, Turn, endpoint_of
from skills.language import is_chinese
from skills.remote.urlguard import Allowlist, Resolver, UrlRefused, check_url, system_resolver

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteSkillConfig(SkillConfig):
    """Where the skill lives and how hard to try; built by the workers from a RemoteSkill row."""

    name: str = "remote"
    url: str = ""
    token: str = field(default="", repr=False)
    timeout_seconds: float = 10.0  # per HTTP attempt
    intents: tuple[str, ...] = ()
    description: str = ""
    retries: int = 2  # extra attempts on transient errors
    backoff_seconds: float = 0.2
    breaker_failures: int = 5  # consecutive failed calls that open the circuit
    breaker_reset_seconds: float = 30.0  # open → half-open after this cool-down
    # Non-public hosts/IPs/CIDRs it may reach (the workers pass OUTBOUND_URL_ALLOWLIST); see urlguard.
    allowlist: tuple[str, ...] = ()
    token_needs_https: bool = False  # production mode: the bearer token never over plain http

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.retries < 0 or self.breaker_failures < 1:
            raise ValueError("need timeout_seconds > 0, retries >= 0, breaker_failures >= 1")


class RemoteServerError(Exception):
    """5xx from the remote skill: transient."""


class RemoteRejected(Exception):
    """4xx from the remote skill: the request was refused; not retried, not the remote's fault."""

    def __init__(self, message: str, user_message: str = "") -> None:
        super().__init__(message)
        self.user_message = user_message


class RemoteProtocolError(Exception):
    """A 200 whose body is not a reply: a bug on the remote side (counts as a failure, no retry)."""


TRANSIENT = (httpx.TransportError, RemoteServerError)  # TransportError covers timeouts and refused connections

# (name, url) → where a breaker keeps its state (e.g. pybreaker.CircuitRedisStorage).
BreakerStorageFactory = Callable[[str, str], pybreaker.CircuitBreakerStorage]


class Breakers:
    """One circuit breaker per remote (name, URL), shared by every instance of it; its state lives
    where `storage(name, url)` says (this process's memory by default; the workers pass a Redis
    storage, so every worker process sees the same open circuit)."""

    def __init__(self, storage: BreakerStorageFactory | None = None) -> None:
        self.storage = storage
        self._lock = threading.Lock()
        self._breakers: dict[tuple[str, str], pybreaker.CircuitBreaker] = {}

    def for_remote(self, cfg: RemoteSkillConfig) -> pybreaker.CircuitBreaker:
        key = (cfg.name, cfg.url)
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None or (breaker.fail_max, breaker.reset_timeout) != (cfg.breaker_failures,
                                                                              cfg.breaker_reset_seconds):
                breaker = pybreaker.CircuitBreaker(
                    fail_max=cfg.breaker_failures, reset_timeout=cfg.breaker_reset_seconds,
                    exclude=[RemoteRejected], name=cfg.name,
                    state_storage=self.storage(cfg.name, cfg.url) if self.storage else None,
                )
                self._breakers[key] = breaker
            return breaker

    def clear(self) -> None:
        with self._lock:
            self._breakers.clear()


# Remote skills built without breakers of their own (a script, a test) share these.
IN_MEMORY = Breakers()


def reset_breakers() -> None:
    IN_MEMORY.clear()


def unavailable(name: str, turn: Turn) -> str:
    if is_chinese(turn.text) or (not turn.text and turn.locale.startswith("zh")):
        return f"抱歉，「{name}」服务暂时不可用，请稍后再试。"
    return f"Sorry, the {name} service is unavailable right now; please try again later."


class RemoteSkill(AISkillPlugin):
    """A skill served over HTTP by another process or team (registered in admin as a RemoteSkill)."""

    name = "remote"
    Config = RemoteSkillConfig
    kind = "io"  # an HTTP call to another service

    def __init__(self, config: RemoteSkillConfig | None = None, *, breakers: Breakers | None = None,
                 resolve: Resolver = system_resolver) -> None:
        super().__init__(config)
        self.breakers = breakers or IN_MEMORY
        self._resolve = resolve
        self._allow = Allowlist.parse(self.cfg.allowlist)
        cfg = self.cfg
        if not cfg.url:
            raise ValueError("a remote skill needs a URL")
        self.name = cfg.name  # type: ignore[misc]  # each remote answers under its own name
        self.intents = tuple(cfg.intents)  # type: ignore[misc]  # and serves the intents it was registered for
        # The runner's deadline covers every attempt and the waits between them.
        waits = sum(min(2.0, cfg.backoff_seconds * 2 ** i) for i in range(cfg.retries))
        self.timeout_seconds = cfg.timeout_seconds * (cfg.retries + 1) + waits + 1.0  # type: ignore[misc]  # per remote
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if cfg.token:
            headers["Authorization"] = f"Bearer {cfg.token}"
        self._http = httpx.Client(
            timeout=httpx.Timeout(cfg.timeout_seconds, connect=min(cfg.timeout_seconds, 5.0)),
            headers=headers, limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )

    @property
    def cfg(self) -> RemoteSkillConfig:
        assert isinstance(self.config, RemoteSkillConfig)
        return self.config

    def recipients(self) -> tuple[str, ...]:
        return (f"remote:{endpoint_of(self.cfg.url)}",)

    def execute(self, turn: Turn) -> Reply:
        cfg = self.cfg
        try:  # before the breaker: a refused address is the operator's mistake, not the remote's failure
            self._checked()
        except UrlRefused as exc:
            log.error("remote skill %s not called: %s", cfg.name, exc)
            raise SkillError(f"remote skill {cfg.name}: URL refused: {exc}", unavailable(cfg.name, turn)) from exc
        breaker = self.breakers.for_remote(cfg)
        try:
            return breaker.call(self._call_with_retries, turn)
        except pybreaker.CircuitBreakerError as exc:
            log.warning("remote skill %s: circuit open, not calling (msg_id=%s)", cfg.name, turn.msg_id)
            raise SkillError(f"remote skill {cfg.name}: circuit open", unavailable(cfg.name, turn)) from exc
        except RemoteRejected as exc:
            log.warning("remote skill %s refused msg_id=%s: %s", cfg.name, turn.msg_id, exc)
            raise SkillError(f"remote skill {cfg.name} refused: {exc}",
                             exc.user_message or unavailable(cfg.name, turn)) from exc
        except (*TRANSIENT, RemoteProtocolError) as exc:
            log.warning("remote skill %s failed msg_id=%s: %r", cfg.name, turn.msg_id, exc)
            raise SkillError(f"remote skill {cfg.name} failed: {exc!r}", unavailable(cfg.name, turn)) from exc

    def _call_with_retries(self, turn: Turn) -> Reply:
        cfg = self.cfg
        for attempt in Retrying(
            stop=stop_after_attempt(cfg.retries + 1),
            wait=wait_exponential(multiplier=cfg.backoff_seconds, max=2.0),
            retry=retry_if_exception_type(TRANSIENT),
            reraise=True,
        ):
            with attempt:
                return self._post(turn)
        raise AssertionError("unreachable: tenacity reraises the last error")

    def _checked(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """Resolved and checked now (every call: DNS may change), then pinned to that address."""
        cfg = self.cfg
        return check_url(cfg.url, self._allow, with_token=bool(cfg.token),
                         require_https_for_token=cfg.token_needs_https, resolve=self._resolve).pinned()

    def _post(self, turn: Turn) -> Reply:
        try:
            url, headers, extensions = self._checked()
        except UrlRefused as exc:  # the name now resolves elsewhere (rebinding): not a transient failure
            raise RemoteRejected(f"URL refused: {exc}") from exc
        response = self._http.post(url, json=turn.to_dict(), headers=headers, extensions=extensions)
        if response.status_code >= 500:
            raise RemoteServerError(f"HTTP {response.status_code}")
        body = _json(response)
        if response.status_code >= 400:
            user_message = str(body.get("user_message") or "") if isinstance(body, dict) else ""
            raise RemoteRejected(f"HTTP {response.status_code}", user_message)
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            raise RemoteProtocolError(f"HTTP {response.status_code} without a reply object")
        return Reply.from_dict(body)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
