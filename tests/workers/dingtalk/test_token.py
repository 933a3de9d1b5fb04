"""The access token is shared through Redis and refreshed at least 5 minutes before it expires."""

from __future__ import annotations

import pytest

from workers.dingtalk.token import REFRESH_MARGIN_SECONDS, TokenCache
from workers.errors import PoisonMessage
from workers.resources import current


class TokenEndpoint:
    """Stands in for /v1.0/oauth2/accessToken: counts fetches, issues numbered tokens."""

    def __init__(self, lifetime: int = 7200) -> None:
        self.fetches = 0
        self.lifetime = lifetime

    def __call__(self) -> tuple[str, int]:
        self.fetches += 1
        return f"token-{self.fetches}", self.lifetime


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def cache(redis_conn, endpoint, clock) -> TokenCache:
    return TokenCache(redis_conn, current().key("dingtalk:token:app"), endpoint, clock=clock)


def test_a_fresh_token_is_fetched_once_and_reused(redis_conn, clock):
    endpoint = TokenEndpoint()
    tokens = cache(redis_conn, endpoint, clock)
    assert [tokens.get() for _ in range(5)] == ["token-1"] * 5
    assert endpoint.fetches == 1


def test_workers_share_the_token_through_redis(redis_conn, clock):
    endpoint = TokenEndpoint()
    assert cache(redis_conn, endpoint, clock).get() == "token-1"
    assert cache(redis_conn, endpoint, clock).get() == "token-1"  # another process
    assert endpoint.fetches == 1


def test_the_token_is_refreshed_five_minutes_before_it_expires(redis_conn, clock):
    endpoint = TokenEndpoint(lifetime=7200)
    tokens = cache(redis_conn, endpoint, clock)
    tokens.get()
    clock.now += 7200 - REFRESH_MARGIN_SECONDS - 1
    assert tokens.get() == "token-1"
    clock.now += 2  # now inside the margin
    assert tokens.get() == "token-2"
    assert REFRESH_MARGIN_SECONDS >= 300


def test_an_invalidated_token_is_fetched_again(redis_conn, clock):
    endpoint = TokenEndpoint()
    tokens = cache(redis_conn, endpoint, clock)
    tokens.invalidate(tokens.get())
    assert tokens.get() == "token-2"


def test_invalidating_an_old_token_keeps_the_newer_one(redis_conn, clock):
    endpoint = TokenEndpoint()
    tokens = cache(redis_conn, endpoint, clock)
    tokens.get()
    tokens.invalidate("token-1")
    tokens.get()
    tokens.invalidate("token-1")  # a slow worker reporting the old token
    assert tokens.get() == "token-2"


def test_an_empty_token_answer_is_poison(redis_conn, clock):
    with pytest.raises(PoisonMessage):
        cache(redis_conn, lambda: ("", 0), clock).get()
