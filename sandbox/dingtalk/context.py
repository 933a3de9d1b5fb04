"""The sandbox's shared state object: config, recorder, gateway, session webhooks, tokens, QPS budget."""

from __future__ import annotations

import copy
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.dingtalk.gateway import Gateway
from sandbox.dingtalk.state import Recorder, SandboxConfig


@dataclass
class Session:
    """What one sessionWebhook token belongs to."""

    token: str
    msg_id: str
    conversation_id: str
    conversation_type: str
    user_id: str
    expires_at: float  # epoch seconds


@dataclass
class StoredFile:
    content: bytes
    content_type: str
    filename: str


@dataclass
class Sandbox:
    """Everything the route handlers share; lives on the server's event loop only."""

    config: SandboxConfig
    recorder: Recorder = field(default_factory=Recorder)
    base_url: str = ""  # set once the server is bound: http://127.0.0.1:PORT
    sessions: dict[str, Session] = field(default_factory=dict)
    conversations: dict[str, str] = field(default_factory=dict)  # conversation id → type
    private_cids: dict[str, str] = field(default_factory=dict)  # staff id → its 1:1 conversation
    tokens: dict[str, float] = field(default_factory=dict)  # access token → expiry (monotonic)
    files: dict[str, StoredFile] = field(default_factory=dict)  # downloadCode → file
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # outTrackId → card
    _calls: dict[str, deque[float]] = field(default_factory=dict)
    # Fault: while non-zero, every reply (sessionWebhook, robot send) fails with this HTTP status
    # and is not recorded, so a test can drive a message through retries into the dead letters.
    failing_sends: int = 0

    def __post_init__(self) -> None:
        self._initial_config = copy.deepcopy(self.config)
        self.gateway = Gateway(self.config, self.recorder)

    # ---- session webhooks ------------------------------------------------------------------

    def new_session(
        self, msg_id: str, conversation_id: str, conversation_type: str, user_id: str, ttl: float
    ) -> Session:
        session = Session(
            token=os.urandom(16).hex(),
            msg_id=msg_id,
            conversation_id=conversation_id,
            conversation_type=conversation_type,
            user_id=user_id,
            expires_at=time.time() + ttl,
        )
        self.sessions[session.token] = session
        return session

    def live_session(self, token: str) -> Session | None:
        session = self.sessions.get(token)
        if session is None or time.time() >= session.expires_at:
            return None
        return session

    def expire_sessions(self) -> int:
        now = time.time()
        for session in self.sessions.values():
            session.expires_at = min(session.expires_at, now)
        return len(self.sessions)

    # ---- access tokens ---------------------------------------------------------------------

    def issue_token(self) -> str:
        """Same token while valid, its validity extended (as DingTalk does)."""
        now = time.monotonic()
        for token, expires in self.tokens.items():
            if expires > now:
                self.tokens[token] = now + self.config.token_ttl
                return token
        token = os.urandom(16).hex()
        self.tokens = {token: now + self.config.token_ttl}
        return token

    def token_valid(self, token: str | None) -> bool:
        return bool(token) and self.tokens.get(token or "", 0.0) > time.monotonic()

    def expire_tokens(self) -> int:
        count = len(self.tokens)
        self.tokens.clear()
        return count

    # ---- QPS limits ------------------------------------------------------------------------

    def allow(self, family: str) -> bool:
        """Sliding one-second window per API family; False means answer 'QPS limit'."""
        limit = self.config.qps_limits.get(family)
        if not limit:
            return True
        now = time.monotonic()
        calls = self._calls.setdefault(family, deque())
        while calls and now - calls[0] >= 1.0:
            calls.popleft()
        if len(calls) >= limit:
            self.recorder.throttled += 1
            return False
        calls.append(now)
        return True

    # ---- reset and summary -----------------------------------------------------------------

    def reset(self, config: bool = False) -> None:
        """Forget what was recorded; with config=True also restore the start-up config, clear faults."""
        if config:
            for name in SandboxConfig.MUTABLE:
                setattr(self.config, name, copy.deepcopy(getattr(self._initial_config, name)))
            self.gateway.auth_rejected = False
            self.gateway.freeze(False)
            self.gateway.zombify(False)
            self.failing_sends = 0
        self.recorder = Recorder()
        self.gateway.recorder = self.recorder
        self.gateway.reset()
        self.cards.clear()
        self._calls.clear()

    def state(self) -> dict[str, Any]:
        return {
            "connections": len(self.gateway.connections),
            "auth_rejected": self.gateway.auth_rejected,
            "failing_sends": self.failing_sends,
            "sessions": len(self.sessions),
            **self.recorder.counters(),
        }


SANDBOX_KEY: web.AppKey[Sandbox] = web.AppKey("sandbox", Sandbox)
