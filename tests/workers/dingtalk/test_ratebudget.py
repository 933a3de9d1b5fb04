"""The shared rate budget: a Redis token bucket per API family that all workers draw from."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import redis

from testkit.clock import FakeClock
from tests.workers.dingtalk.conftest import REDIS_URL
from workers.dingtalk.ratebudget import RateBudget


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, at in enumerate(stamps):
        while at - stamps[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_calls_are_spaced_to_the_rate_with_headroom(redis_client: redis.Redis, redis_prefix: str) -> None:
    clock = FakeClock()  # the waits are asked of this clock; the bucket keeps Redis's time
    budget = RateBudget(redis_client, redis_prefix, {"card": 20}, headroom=0.8, clock=clock)
    started = time.monotonic()
    for _ in range(9):
        assert budget.acquire("card", timeout=2)
    real = time.monotonic() - started  # what Redis's clock moved meanwhile (the fake one did not sleep)
    # The first is free; the k-th after it owns the slot k/16 s after the first (16/s = 20 × 0.8).
    assert len(clock.sleeps) == 8
    for k, slept in enumerate(clock.sleeps, start=1):
        assert k / 16 - real - 0.005 <= slept <= k / 16 + 0.005


def test_try_acquire_takes_nothing_when_the_bucket_is_empty(redis_client: redis.Redis, redis_prefix: str) -> None:
    budget = RateBudget(redis_client, redis_prefix, {"card": 2}, headroom=1.0)
    assert budget.try_acquire("card") == 0.0
    wait = budget.try_acquire("card")
    assert 0.3 < wait <= 0.5
    time.sleep(wait)
    assert budget.try_acquire("card") == 0.0


def test_acquire_gives_up_at_its_timeout(redis_client: redis.Redis, redis_prefix: str) -> None:
    clock = FakeClock()
    budget = RateBudget(redis_client, redis_prefix, {"card": 1}, clock=clock)
    assert budget.acquire("card", timeout=0)
    assert not budget.acquire("card", timeout=0.2)
    assert clock.sleeps == []  # it knows the wait is too long without sleeping it


def test_a_penalty_holds_every_caller(redis_client: redis.Redis, redis_prefix: str) -> None:
    budget = RateBudget(redis_client, redis_prefix, {"card": 100})
    other_worker = RateBudget(redis.Redis.from_url(REDIS_URL), redis_prefix, {"card": 100})
    budget.penalize("card", 0.5)
    assert other_worker.try_acquire("card") > 0.3
    started = time.monotonic()
    assert other_worker.acquire("card", timeout=2)
    assert 0.35 < time.monotonic() - started < 0.8


def test_families_are_separate_and_unknown_ones_are_refused(redis_client: redis.Redis, redis_prefix: str) -> None:
    budget = RateBudget(redis_client, redis_prefix, {"card": 1, "webhook": 1, "robot_send": 0})
    assert budget.try_acquire("card") == 0.0
    assert budget.try_acquire("webhook") == 0.0
    assert all(budget.try_acquire("robot_send") == 0.0 for _ in range(50))  # 0: unlimited
    with pytest.raises(KeyError):
        budget.try_acquire("cards")


def test_threads_sharing_one_budget_stay_within_the_rate(redis_prefix: str) -> None:
    stamps: list[float] = []
    stop_at = time.monotonic() + 1.5

    def hammer() -> None:
        client = RateBudget(redis.Redis.from_url(REDIS_URL), redis_prefix, {"card": 10})
        while time.monotonic() < stop_at:
            if client.acquire("card", timeout=0.3):
                stamps.append(time.time())

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max_in_window(stamps) <= 10
    # Evenly spaced at 8.5/s (the default headroom), and the budget is used, not starved.
    assert len(stamps) >= 12
    assert len(stamps) <= 1 + 8.5 * (max(stamps) - min(stamps)) + 1


WORKER = """
import json, sys, time, redis
from testkit.clock import FakeClock
from workers.dingtalk.ratebudget import RateBudget
budget = RateBudget(redis.Redis.from_url(sys.argv[1]), sys.argv[2], {"card": 10})
start_at = float(sys.argv[3])
time.sleep(max(0, start_at - time.time()))
stamps = []
while time.time() < start_at + 3:
    if budget.acquire("card", timeout=0.3):
        stamps.append(time.time())
print(json.dumps(stamps))
"""


@pytest.mark.slow
def test_two_processes_sharing_the_budget_stay_within_the_rate(redis_prefix: str) -> None:
    start_at = time.time() + 1.5
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, REDIS_URL, redis_prefix, str(start_at)],
                         stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    per_process = [json.loads(p.communicate(timeout=20)[0]) for p in procs]
    stamps = [s for got in per_process for s in got]
    assert all(len(got) >= 5 for got in per_process)  # both got a fair share
    assert max_in_window(stamps) <= 10
    assert len(stamps) >= 24  # 8.5/s with the default headroom, for 3 s
    assert len(stamps) <= 1 + 8.5 * (max(stamps) - min(stamps)) + 1
