"""Fixtures for the LLM chat path: the stub LLM, the DingTalk sandbox's card endpoints, Redis."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from testkit.personas import alice, bob
from workers.dingtalk.card_client import CardClient, CardTarget

REDIS_URL = "redis://127.0.0.1:6379/0"
ROBOT_CODE = "sandbox-client-id"  # the sandbox's client id doubles as robot code


@dataclass
class Dingtalk:
    """The project's DingTalk sandbox, its control client and a valid access token."""

    server: SandboxServer
    control: SandboxClient
    token: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def card(self, out_track_id: str) -> dict[str, Any]:
        return self.control.card(out_track_id)

    def streaming(self, out_track_id: str) -> list[dict[str, Any]]:
        """Streaming updates the sandbox applied (not duplicates, not after the final one)."""
        return [u for u in self.card(out_track_id)["updates"]
                if u["kind"] == "streaming" and not u["duplicate"] and not u["after_finalize"]]


@pytest.fixture
def dingtalk() -> Iterator[Dingtalk]:
    server = SandboxServer(port=0, ping_interval=0).start()
    control = SandboxClient(server.base_url)
    token = httpx.post(f"{server.base_url}/v1.0/oauth2/accessToken",
                       json={"appKey": server.config.client_id, "appSecret": server.config.client_secret}).json()
    try:
        yield Dingtalk(server, control, token["accessToken"])
    finally:
        control.close()
        server.stop()


@dataclass
class CallLog:
    """Every card API request our client sent, with the answer (httpx event hook, client side)."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, response: httpx.Response) -> None:
        response.read()
        body = json.loads(response.request.content or b"null")
        answer = response.json() if response.content else {}
        with self.lock:
            self.calls.append({"method": response.request.method, "path": response.request.url.path,
                               "body": body, "status": response.status_code,
                               "code": answer.get("code") if isinstance(answer, dict) else None})

    def to(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.calls if c["path"] == path]


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


@pytest.fixture
def http(call_log: CallLog) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0, event_hooks={"response": [call_log.hook]}) as client:
        yield client


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def card_client(http: httpx.Client, dingtalk: Dingtalk) -> CardClient:
    return CardClient(http, dingtalk.url, lambda: dingtalk.token, backoff_initial=0.05, backoff_max=0.3)


GROUP = CardTarget(conversation_type="2", conversation_id="cid-group-1", user_id=alice.user_id, robot_code=ROBOT_CODE)
PRIVATE = CardTarget(conversation_type="1", conversation_id=bob.conversation_id, user_id=bob.user_id,
                     robot_code=ROBOT_CODE)
