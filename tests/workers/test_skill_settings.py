"""Workers see admin changes within seconds: enabled skills per tenant, config overrides, remote skills;
the per-process LRU of skill data empties when the settings version moves."""

from __future__ import annotations

import pytest
import redis

from skills.remote import RemoteSkill
from testkit.clock import ManualClock
from testkit.personas import bob
from webapp.actions import versions
from webapp.actions.skills import do_save_remote_skill, do_update_admin_setting, do_update_skill_setting
from workers import skill_settings
from workers.skill_settings import SettingsCache, SkillDataCache, bump_settings_version, skill_data_cache

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache(worker_settings) -> SettingsCache:
    return SettingsCache(check_seconds=0)


def test_every_built_in_skill_is_enabled_until_an_admin_disables_it(cache):
    assert {"echo", "help", "docsearch", "schedule"} <= cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "*", "docsearch", False, {})
    do_update_skill_setting(bob.key, "corp2", "docsearch", True, {})
    versions.publish(versions.SETTINGS)
    assert "docsearch" not in cache.enabled_skills("corp1")
    assert "docsearch" in cache.enabled_skills("corp2")


def test_a_change_is_seen_only_after_its_version_is_published(worker_settings):
    cache = SettingsCache(check_seconds=0)
    assert "help" in cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "corp1", "help", False, {})
    assert "help" in cache.enabled_skills("corp1")  # no bump yet: the snapshot is kept
    versions.publish(versions.SETTINGS)
    assert "help" not in cache.enabled_skills("corp1")


def test_the_cache_checks_the_version_at_most_every_few_seconds(worker_settings):
    cache = SettingsCache(check_seconds=60)
    cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "corp1", "help", False, {})
    versions.publish(versions.SETTINGS)
    assert "help" in cache.enabled_skills("corp1")
    cache.invalidate()
    assert "help" not in cache.enabled_skills("corp1")


def test_chat_config_comes_from_the_audited_admin_settings_then_the_tenant(cache):
    do_update_admin_setting(bob.key, "llm.system_prompt", "你是 ACME 的助手。")
    do_update_admin_setting(bob.key, "llm.temperature", 0.2)
    do_update_skill_setting(bob.key, "corp2", "llm_chat", True, {"temperature": 0.9})
    versions.publish(versions.SETTINGS)
    corp1, corp2 = cache.skill("corp1", "llm_chat"), cache.skill("corp2", "llm_chat")
    assert (corp1.config.system_prompt, corp1.config.temperature) == ("你是 ACME 的助手。", 0.2)
    assert (corp2.config.system_prompt, corp2.config.temperature) == ("你是 ACME 的助手。", 0.9)
    assert cache.skill("corp1", "llm_chat") is corp1  # one instance per configuration


def test_router_thresholds_are_admin_settings_with_defaults(cache):
    assert cache.knob("router.high_confidence") == 0.6
    do_update_admin_setting(bob.key, "router.high_confidence", 0.8)
    versions.publish(versions.SETTINGS)
    assert cache.knob("router.high_confidence") == 0.8


def test_remote_skills_are_built_with_their_decrypted_token_and_intents(cache):
    do_save_remote_skill(bob.key, "crm", url="http://127.0.0.1:9/", intents=["crm.lookup"], token="tok",
                         timeout_seconds=2)
    versions.publish(versions.SETTINGS)
    skill = cache.skill("corp1", "crm")
    assert isinstance(skill, RemoteSkill)
    assert (skill.name, skill.intents, skill.cfg.token) == ("crm", ("crm.lookup",), "tok")
    assert cache.intent_map()["crm.lookup"] == "crm"
    assert "crm" in cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "corp1", "crm", False, {})
    versions.publish(versions.SETTINGS)
    assert "crm" not in cache.enabled_skills("corp1")


def test_the_process_cache_is_shared_and_resettable(worker_settings):
    assert skill_settings.cache() is skill_settings.cache()
    first = skill_settings.cache()
    skill_settings.reset()
    assert skill_settings.cache() is not first


def test_chat_counts_as_enabled_only_with_an_llm_to_talk_to(cache, monkeypatch):
    from conf.settings import get_settings

    assert "llm_chat" not in cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "corp2", "llm_chat", True, {"base_url": "http://127.0.0.1:9/v1"})
    versions.publish(versions.SETTINGS)
    assert "llm_chat" in cache.enabled_skills("corp2")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:9/v1")
    get_settings.cache_clear()
    assert "llm_chat" in cache.enabled_skills("corp1")


def test_an_admin_change_also_empties_the_skill_data_cache(worker_settings, django_capture_on_commit_callbacks):
    from workers.skill_settings import SkillDataCache

    data = SkillDataCache(maxsize=4, check_seconds=0)
    data.get_or_load("prompt", lambda: "old")
    with django_capture_on_commit_callbacks(execute=True):
        do_update_admin_setting(bob.key, "llm.temperature", 0.3)
    assert data.get_or_load("prompt", lambda: "new") == "new"


# -- skill data cache ------------------------------------------------------------------------

def test_a_value_is_loaded_once_then_served_from_the_cache(worker_settings):
    cache = SkillDataCache(maxsize=10, check_seconds=0)
    calls = []
    for _ in range(3):
        assert cache.get_or_load("k", lambda: calls.append(1) or "v") == "v"
    assert len(calls) == 1


def test_the_least_recently_used_entry_goes_first(worker_settings):
    cache = SkillDataCache(maxsize=2, check_seconds=0)
    for k in ("a", "b", "a", "c"):
        cache.get_or_load(k, lambda k=k: k.upper())
    loads = cache.loads
    cache.get_or_load("a", lambda: "A")  # kept (recently used)
    cache.get_or_load("b", lambda: "B")  # evicted: loaded again
    assert cache.loads == loads + 1


def test_an_admin_change_empties_every_cache_within_the_check_interval(worker_settings):
    clock = ManualClock()
    cache = SkillDataCache(maxsize=10, check_seconds=1.0, clock=clock)
    cache.get_or_load("prompt", lambda: "old")
    bump_settings_version()
    assert cache.get_or_load("prompt", lambda: "new") == "old"  # not checked yet (bounded staleness)
    clock.advance(1.5)
    assert cache.get_or_load("prompt", lambda: "new") == "new"
    assert cache.invalidations == 1


def test_without_redis_the_cache_keeps_serving(worker_settings):
    def broken() -> str:
        raise redis.ConnectionError("down")

    cache = SkillDataCache(maxsize=10, check_seconds=0, version_reader=broken)
    assert cache.get_or_load("k", lambda: 1) == 1
    assert cache.get_or_load("k", lambda: 2) == 1


def test_each_process_has_one_shared_cache(worker_settings):
    assert skill_data_cache() is skill_data_cache()
