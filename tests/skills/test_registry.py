"""The registry: every skill imports, intents are unique, Config defaults are valid, each skill has
tests, each intent ships at least 20 examples per language, and the fallback skill is chosen right."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from skills import registry
from skills.api import ConfigError, SkillConfig
from skills.llm_chat import LLMChatConfig
from skills.remote.skill import RemoteSkillConfig

TESTS = Path(__file__).resolve().parents[1]
MIN_EXAMPLES = 20


@pytest.mark.parametrize("name", registry.skill_names())
def test_every_skill_imports_with_a_help_text_intents_and_valid_config_defaults(name):
    cls = registry.skill_class(name)
    assert cls.name == name  # skill_class refuses anything that is not an AISkillPlugin
    assert cls.intents and cls.help_text().strip()
    assert issubclass(cls.Config, SkillConfig)
    assert cls.Config.from_dict({}) == cls.Config()
    assert isinstance(registry.build(name).config, cls.Config)
    assert cls.display_name("zh") and cls.display_name("en")
    assert 0 < cls.timeout_seconds <= 120


@pytest.mark.parametrize("name", registry.skill_names())
def test_every_skill_has_a_test_module(name):
    # A skill package gets a test folder of its own, a small one a module next to the others.
    found = list((TESTS / "skills" / name).glob("test_*.py")) + list((TESTS / "skills").glob(f"test_{name}.py"))
    assert found, f"write tests/skills/{name}/test_*.py (or tests/skills/test_{name}.py)"


@pytest.mark.parametrize("name", registry.skill_names())
def test_every_intent_ships_enough_examples_in_chinese_and_english(name):
    cls = registry.skill_class(name)
    assert set(cls.examples) == set(cls.intents), "examples for exactly the declared intents"
    for intent, by_lang in cls.examples_by_language().items():
        for lang in ("zh", "en"):
            assert len(by_lang[lang]) >= MIN_EXAMPLES, f"{intent}: {len(by_lang[lang])} {lang} examples"
            assert len(set(by_lang[lang])) == len(by_lang[lang]), f"{intent}: duplicate {lang} examples"


def test_intents_are_unique_across_skills():
    intents = [i for n in registry.skill_names() for i in registry.skill_class(n).intents]
    assert len(intents) == len(set(intents))
    assert registry.skill_for_intent("schedule.create") == "schedule"
    assert registry.skill_for_intent("chat") == "llm_chat"
    assert registry.skill_for_intent("help") == "help"
    with pytest.raises(registry.UnknownSkill):
        registry.skill_for_intent("no.such.intent")
    with pytest.raises(registry.UnknownSkill):
        registry.skill_class("no-such-skill")


def test_an_example_text_belongs_to_one_intent_only():
    owner: dict[str, str] = {}
    for name in registry.skill_names():
        for intent, texts in registry.skill_class(name).examples.items():
            for text in texts:
                assert owner.setdefault(text, intent) == intent, f"{text!r} in {owner[text]} and {intent}"


def test_build_validates_config_overrides():
    config = registry.build("llm_chat", {"temperature": 0.2}).config
    assert isinstance(config, LLMChatConfig) and config.temperature == 0.2
    with pytest.raises(ConfigError, match="temprature"):
        registry.build("llm_chat", {"temprature": 0.2})


def test_the_fallback_is_chat_only_when_an_llm_is_configured():
    assert registry.FALLBACK_SKILL in registry.skill_names()
    assert registry.fallback_skill() == "echo"
    assert registry.fallback_skill(llm_configured=True) == "llm_chat"
    assert registry.fallback_skill({"echo", "help"}, llm_configured=True) == "echo"
    assert registry.fallback_skill({"help"}, llm_configured=True) == "help"
    assert registry.fallback_skill(set(), llm_configured=True) == registry.FALLBACK_SKILL


# A field whose name ends in one of these words holds a secret (history_token_budget does not);
# a database/broker URL carries its password.
SECRET_NAME = re.compile(r"(^|_)(api_key|key|token|secret|password|passwd|dsn|credentials?)$"
                         r"|(^|_)(database|db|broker|redis|amqp)_url$")


def _all_configs() -> list[type[SkillConfig]]:
    return [registry.skill_class(n).Config for n in registry.skill_names()] + [RemoteSkillConfig]


@pytest.mark.parametrize("config", _all_configs(), ids=lambda c: c.__qualname__)
def test_every_secret_looking_config_field_is_declared_secret(config):
    """repr=False is what keeps a value out of admin help, pages and audit rows and gets it encrypted."""
    exposed = [f.name for f in dataclasses.fields(config) if SECRET_NAME.search(f.name) and f.repr]
    assert not exposed, f"{config.__qualname__}: declare {exposed} with field(repr=False)"
    assert "s3cret" not in repr(config(**dict.fromkeys(config.secret_keys(), "s3cret")))


def test_the_secret_name_rule_is_neither_loose_nor_eager():
    for name in ("api_key", "llm_api_key", "token", "client_secret", "password", "vector_database_url", "dsn"):
        assert SECRET_NAME.search(name), name
    for name in ("max_tokens", "history_token_budget", "llm_base_url", "url", "keyword_min_similarity", "top_k"):
        assert not SECRET_NAME.search(name), name


def test_secret_values_never_show_in_repr_or_schema():
    from skills.docsearch.skill import DocSearchConfig
    cfg = DocSearchConfig(llm_api_key="sk-live-123", vector_database_url="postgres://u:pw-xyz@db/x")
    assert "sk-live-123" not in repr(cfg) and "pw-xyz" not in repr(cfg)
    assert DocSearchConfig.schema()["vector_database_url"]["default"] == "***"
    assert {"llm_api_key", "vector_database_url"} <= DocSearchConfig.secret_keys()
