"""In the workers a remote skill's circuit breaker lives in Redis: one process opening it opens it
for every process, and the cool-down and recovery are shared too."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import time_machine

from skills.api import SkillError
from skills.remote.skill import Breakers, RemoteSkill, RemoteSkillConfig
from tests.skills.test_remote import count, turn
from tests.skills.test_remote import servers as servers  # the fixture, shared


def in_process(breakers: Breakers, url: str, **cfg) -> RemoteSkill:
    """The remote skill as a worker process builds it: with that process's breakers."""
    return RemoteSkill(RemoteSkillConfig(name="faulty", url=url, allowlist=("127.0.0.1",), **cfg), breakers=breakers)


def test_a_circuit_opened_in_one_process_is_open_in_the_others_and_recovers_for_all(servers, resources,
                                                                                   redis_conn, worker_settings):
    url = servers(["tests/skills/faulty_remote.py", "--mode", "500"])
    cfg = {"retries": 0, "backoff_seconds": 0.05, "breaker_failures": 2, "breaker_reset_seconds": 30.0}
    first = resources.current.breakers
    # pybreaker times the cool-down with datetime.now: the wall clock stands still until the test
    # moves it (HTTP timeouts run on the monotonic clock, untouched).
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        for text in ("one", "two"):  # the second failure trips the breaker
            with pytest.raises(SkillError):
                in_process(first, url, **cfg).execute(turn(text))
        assert count(url) == 2
        assert any(k.startswith(f"{worker_settings.redis_key_prefix}breaker:faulty:") for k in redis_conn.keys("*"))

        # What a second worker process has: no breaker object in memory, the same Redis.
        second = Breakers(resources.current.breaker_storage)
        clock.shift(29)  # still cooling down
        with pytest.raises(SkillError, match="circuit open"):
            in_process(second, url, **cfg).execute(turn("three"))
        assert count(url) == 2  # the other process never called the failing remote

        httpx.post(url + "mode", json={"mode": "ok"})
        clock.shift(2)  # cool-down over: half-open lets a trial call through, and it succeeds
        assert in_process(second, url, **cfg).execute(turn("four")).text == "remote says: four"
        third = Breakers(resources.current.breaker_storage)
        assert in_process(third, url, **cfg).execute(turn("five")).text == "remote says: five"


def test_with_redis_unreachable_the_breaker_falls_back_to_closed(servers, resources):
    res = resources.set(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    url = servers(["tests/skills/faulty_remote.py", "--mode", "ok"])
    assert in_process(res.breakers, url, retries=0).execute(turn("hi")).text == "remote says: hi"
