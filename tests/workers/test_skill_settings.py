"""Workers see admin changes within seconds: enabled skills per tenant, config overrides, remote skills;
the per-process LRU of skill data empties when the settings version moves."""

from __future__ import annotations

import pytest
import redis

from skills.remote import RemoteSkill
from testkit.clock import FakeClock
from testkit.personas import bob
from webapp.actions import versions
from webapp.actions.skills import do_save_remote_skill, do_update_admin_setting, do_update_skill_setting
from workers.skill_settings import SettingsCache, SkillDataCache, bump_settings_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache(resources) -> SettingsCache:
    return SettingsCache(resources.current, check_seconds=0)


def test_every_built_in_skill_is_enabled_until_an_admin_disables_it(cache):
    assert {"echo", "help", "docsearch", "schedule"} <= cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "*", "docsearch", False, {})
    do_update_skill_setting(bob.key, "corp2", "docsearch", True, {})
    versions.publish(versions.SETTINGS)
    assert "docsearch" not in cache.enabled_skills("corp1")
    assert "docsearch" in cache.enabled_skills("corp2")


def test_a_change_is_seen_only_after_its_version_is_published(resources):
    cache = SettingsCache(resources.current, check_seconds=0)
    assert "help" in cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "corp1", "help", False, {})
    assert "help" in cache.enabled_skills("corp1")  # no bump yet: the snapshot is kept
    versions.publish(versions.SETTINGS)
    assert "help" not in cache.enabled_skills("corp1")


def test_the_cache_checks_the_version_at_most_every_few_seconds(resources):
    cache = SettingsCache(resources.current, check_seconds=60)
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


def test_remote_skills_get_the_outbound_allowlist_and_the_https_rule_of_production(resources):
    resources.set(OUTBOUND_URL_ALLOWLIST="127.0.0.1, 10.8.0.0/16", DJANGO_SECURE="1")
    do_save_remote_skill(bob.key, "crm", url="https://10.8.1.2/", intents=["crm.lookup"], token="tok")
    versions.publish(versions.SETTINGS)
    skill = SettingsCache(resources.current, check_seconds=0).skill("corp1", "crm")
    assert isinstance(skill, RemoteSkill)
    assert skill.cfg.allowlist == ("127.0.0.1", "10.8.0.0/16") and skill.cfg.token_needs_https


def test_masking_for_external_peers_is_an_admin_setting_on_by_default(cache):
    assert cache.knob("privacy.mask_external") is True
    do_update_admin_setting(bob.key, "privacy.mask_external", False)
    versions.publish(versions.SETTINGS)
    assert cache.knob("privacy.mask_external") is False


def test_the_process_cache_is_one_per_resources_container(resources):
    first = resources.current.skill_settings
    assert resources.current.skill_settings is first
    assert resources.set().skill_settings is not first  # new settings, a new container, a fresh cache


def test_chat_counts_as_enabled_only_with_an_llm_to_talk_to(cache, resources):
    assert "llm_chat" not in cache.enabled_skills("corp1")
    do_update_skill_setting(bob.key, "corp2", "llm_chat", True, {"base_url": "http://127.0.0.1:9/v1"})
    versions.publish(versions.SETTINGS)
    assert "llm_chat" in cache.enabled_skills("corp2")
    configured = SettingsCache(resources.set(LLM_BASE_URL="http://127.0.0.1:9/v1"), check_seconds=0)
    assert "llm_chat" in configured.enabled_skills("corp1")


def test_an_admin_change_also_empties_the_skill_data_cache(resources, django_capture_on_commit_callbacks):
    from workers.skill_settings import SkillDataCache

    data = SkillDataCache(resources.current, maxsize=4, check_seconds=0)
    data.get_or_load("prompt", lambda: "old")
    with django_capture_on_commit_callbacks(execute=True):
        do_update_admin_setting(bob.key, "llm.temperature", 0.3)
    assert data.get_or_load("prompt", lambda: "new") == "new"


def test_built_in_skills_get_the_environments_knobs_under_the_tenants_overrides(resources):
    from skills.docsearch.skill import DocSearchConfig
    from skills.llm_chat import LLMChatConfig

    res = resources.set(LLM_BASE_URL="http://127.0.0.1:9/v1", LLM_MODEL="m-env", LLM_API_KEY="k-env",
                        LLM_MAX_TOKENS="77", VECTOR_DATABASE_URL="postgresql://127.0.0.1:9/vectors")
    cache = SettingsCache(res, check_seconds=0)
    do_update_skill_setting("bob", "corp2", "llm_chat", True, {"model": "m-tenant"})
    versions.publish(versions.SETTINGS)
    corp1, corp2 = cache.skill("corp1", "llm_chat").config, cache.skill("corp2", "llm_chat").config
    assert isinstance(corp1, LLMChatConfig) and isinstance(corp2, LLMChatConfig)
    assert (corp1.base_url, corp1.model, corp1.api_key, corp1.max_tokens) == (
        "http://127.0.0.1:9/v1", "m-env", "k-env", 77)
    assert (corp2.base_url, corp2.model) == ("http://127.0.0.1:9/v1", "m-tenant")  # the tenant's wins
    docs = cache.skill("corp1", "docsearch").config
    assert isinstance(docs, DocSearchConfig)
    assert (docs.vector_database_url, docs.llm_base_url, docs.llm_model, docs.llm_max_tokens) == (
        "postgresql://127.0.0.1:9/vectors", "http://127.0.0.1:9/v1", "m-env", 77)
    assert "k-env" not in repr(corp1) and "k-env" not in repr(docs)  # secrets stay out of logs


def test_the_schedule_skill_is_handed_the_django_reminder_store(cache):
    from webapp.actions.reminder_store import DjangoReminderStore

    assert isinstance(cache.skill("corp1", "schedule").store, DjangoReminderStore)


# -- skill data cache ------------------------------------------------------------------------

def test_a_value_is_loaded_once_then_served_from_the_cache(resources):
    cache = SkillDataCache(resources.current, maxsize=10, check_seconds=0)
    calls: list[str] = []

    def load() -> str:
        calls.append("k")
        return "v"

    for _ in range(3):
        assert cache.get_or_load("k", load) == "v"
    assert len(calls) == 1


def test_the_least_recently_used_entry_goes_first(resources):
    cache = SkillDataCache(resources.current, maxsize=2, check_seconds=0)
    for k in ("a", "b", "a", "c"):
        cache.get_or_load(k, k.upper)
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
