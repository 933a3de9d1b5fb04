"""In the workers a remote skill's circuit breaker lives in Redis: one process opening it opens it
for every process, and the cool-down and recovery are shared too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import time_machine

from skills.api import SkillError
from skills.remote.skill import reset_breakers, use_breaker_storage
from tests.skills.test_remote import adapter, count, servers, turn  # noqa: F401  (servers: fixture)
from workers import resources


@pytest.fixture
def shared_breakers(worker_settings) -> Iterator[None]:
    use_breaker_storage(resources.breaker_storage)
    yield
    use_breaker_storage(None)


def other_process() -> None:
    """What a second worker process has: no breaker object in memory, the same Redis."""
    reset_breakers()


def test_a_circuit_opened_in_one_process_is_open_in_the_others_and_recovers_for_all(servers, shared_breakers,
                                                                                   redis_conn, worker_settings):
    url = servers(["tests/skills/faulty_remote.py", "--mode", "500"])
    cfg = dict(retries=0, backoff_seconds=0.05, breaker_failures=2, breaker_reset_seconds=30.0)
    # pybreaker times the cool-down with datetime.now: the wall clock stands still until the test
    # moves it (HTTP timeouts run on the monotonic clock, untouched).
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for text in ("one", "two"):  # the second failure trips the breaker
            with pytest.raises(SkillError):
                adapter(url, **cfg).execute(turn(text))
        assert count(url) == 2
        assert any(k.startswith(f"{worker_settings.redis_key_prefix}breaker:faulty:") for k in redis_conn.keys("*"))

        other_process()
        clock.shift(29)  # still cooling down
        with pytest.raises(SkillError, match="circuit open"):
            adapter(url, **cfg).execute(turn("three"))
        assert count(url) == 2  # the other process never called the failing remote

        httpx.post(url + "mode", json={"mode": "ok"})
        clock.shift(2)  # cool-down over: half-open lets a trial call through, and it succeeds
        assert adapter(url, **cfg).execute(turn("four")).text == "remote says: four"
        other_process()
        assert adapter(url, **cfg).execute(turn("five")).text == "remote says: five"


def test_with_redis_unreachable_the_breaker_falls_back_to_closed(servers, monkeypatch, worker_settings):
    from conf.settings import get_settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    get_settings.cache_clear()
    use_breaker_storage(resources.breaker_storage)
    try:
        url = servers(["tests/skills/faulty_remote.py", "--mode", "ok"])
        assert adapter(url, retries=0).execute(turn("hi")).text == "remote says: hi"
    finally:
        use_breaker_storage(None)
        get_settings.cache_clear()
