"""The per-process LRU cache of skill data and its invalidation through the Redis settings version."""

from __future__ import annotations

import redis

from tests.support.clock import FakeClock
from workers.skill_settings import SkillDataCache, bump_settings_version


def test_a_value_is_loaded_once_then_served_from_the_cache(resources):
    cache = SkillDataCache(resources.current, maxsize=10, check_seconds=0)
    calls = []
    for _ in range(3):
        assert cache.get_or_load("k", lambda: calls.append(1) or "v") == "v"
    assert len(calls) == 1


def test_the_least_recently_used_entry_goes_first(resources):
    cache = SkillDataCache(resources.current, maxsize=2, check_seconds=0)
    for k in ("a", "b", "a", "c"):
        cache.get_or_load(k, lambda k=k: k.upper())
    loads = cache.loads
    cache.get_or_load("a", lambda: "A")  # kept (recently used)
    cache.get_or_load("b", lambda: "B")  # evicted: loaded again
    assert cache.loads == loads + 1


def test_an_admin_change_empties_every_cache_within_the_check_interval(resources):
    clock = FakeClock()
    res = resources.set(clock=clock)
    cache = SkillDataCache(res, maxsize=10, check_seconds=1.0)
    cache.get_or_load("prompt", lambda: "old")
    bump_settings_version(res)
    assert cache.get_or_load("prompt", lambda: "new") == "old"  # not checked yet (bounded staleness)
    clock.advance(1.5)
    assert cache.get_or_load("prompt", lambda: "new") == "new"
    assert cache.invalidations == 1


def test_without_redis_the_cache_keeps_serving(resources):
    def broken() -> str:
        raise redis.ConnectionError("down")

    cache = SkillDataCache(resources.current, maxsize=10, check_seconds=0, version_reader=broken)
    assert cache.get_or_load("k", lambda: 1) == 1
    assert cache.get_or_load("k", lambda: 2) == 1


def test_each_process_has_one_shared_cache(resources):
    assert resources.current.skill_data is resources.current.skill_data
