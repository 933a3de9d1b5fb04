"""Fixtures for the LLM chat path: the stub LLM, the card endpoints, a Redis client and budget."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
import redis

from sandbox.dingtalk_cards import CardPeer
from sandbox.llm import StubLLMServer
from skills.api import Turn
from workers.card_api import CardClient, CardTarget

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def stub_server() -> Iterator[StubLLMServer]:
    with StubLLMServer(port=0) as server:
        yield server


@pytest.fixture
def stub(stub_server: StubLLMServer) -> Iterator[StubLLMServer]:
    """The session's stub, reset to plain instant answers for each test."""
    stub_server.reset()
    stub_server.configure(api_key="")
    yield stub_server
    stub_server.reset()
    stub_server.configure(api_key="")


@pytest.fixture
def card_peer() -> Iterator[CardPeer]:
    with CardPeer(port=0) as peer:
        yield peer


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def card_client(http: httpx.Client, card_peer: CardPeer) -> CardClient:
    return CardClient(http, card_peer.url, lambda: card_peer.token, backoff_initial=0.05, backoff_max=0.3)


def make_turn(text: str = "hello there", **fields: object) -> Turn:
    base: dict[str, object] = {
        "msg_id": "msg-1", "tenant_id": "t1", "conversation_id": "cid-group-1",
        "conversation_type": "2", "user_id": "staff-1", "user_nick": "Alice", "locale": "en-US",
    }
    base.update(fields)
    return Turn(text=text, **base)  # type: ignore[arg-type]


GROUP = CardTarget(conversation_type="2", conversation_id="cid-group-1", user_id="staff-1", robot_code="robot-1")
PRIVATE = CardTarget(conversation_type="1", conversation_id="cid-p-1", user_id="staff-2", robot_code="robot-1")
