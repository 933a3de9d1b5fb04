"""The plugin contract: a typed Config validated from JSON, example utterances per language, labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from skills.api import AISkillPlugin, ConfigError, SkillConfig


@dataclass(frozen=True)
class WeatherConfig(SkillConfig):
    city: str = "杭州"
    days: int = 3
    threshold: float = 0.5
    units: tuple[str, ...] = ("C",)
    verbose: bool = False
    api_key: str = field(default="", repr=False)
    fallback_city: str | None = None

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")


class WeatherSkill(AISkillPlugin):
    """Weather: tells the forecast."""

    name = "weather"
    intents = ("weather.ask",)
    Config = WeatherConfig
    examples = {"weather.ask": ("明天下雨吗", "will it rain tomorrow", "杭州天气")}
    label = {"zh": "天气", "en": "Weather"}


def test_an_empty_mapping_gives_the_defaults():
    assert WeatherConfig.from_dict({}) == WeatherConfig()
    assert WeatherConfig.from_dict(None) == WeatherConfig()


def test_overrides_are_typed_from_json_shapes():
    cfg = WeatherConfig.from_dict({"city": "北京", "threshold": 1, "units": ["C", "F"], "fallback_city": "上海"})
    assert cfg.city == "北京" and cfg.threshold == 1.0 and isinstance(cfg.threshold, float)
    assert cfg.units == ("C", "F") and cfg.fallback_city == "上海"
    assert WeatherConfig.from_dict({"fallback_city": None}).fallback_city is None


def test_it_names_unknown_keys_and_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['cty'\].*known keys: \['api_key', 'city'"):
        WeatherConfig.from_dict({"cty": "北京"})


@pytest.mark.parametrize("data, message", [
    ({"days": "3"}, "WeatherConfig.days: expected int, got str"),
    ({"days": True}, "WeatherConfig.days: expected int, got bool"),
    ({"threshold": "high"}, "WeatherConfig.threshold: expected float"),
    ({"verbose": 1}, "WeatherConfig.verbose: expected bool"),
    ({"units": ["C", 2]}, r"WeatherConfig.units\[1\]: expected str"),
    ({"units": "C"}, "WeatherConfig.units: expected tuple"),
])
def test_it_refuses_wrong_types_with_a_clear_message(data, message):
    with pytest.raises(ConfigError, match=message):
        WeatherConfig.from_dict(data)


def test_the_configs_own_checks_become_config_errors():
    with pytest.raises(ConfigError, match="days must be at least 1"):
        WeatherConfig.from_dict({"days": 0})


def test_secrets_are_known_and_hidden_in_the_schema():
    assert WeatherConfig.secret_keys() == {"api_key"}
    schema = WeatherConfig.schema()
    assert schema["api_key"]["default"] == "***"
    assert schema["days"] == {"type": "int", "default": 3}


def test_examples_are_split_by_language_and_labels_fall_back():
    assert WeatherSkill.examples_by_language() == {
        "weather.ask": {"zh": ["明天下雨吗", "杭州天气"], "en": ["will it rain tomorrow"]}}
    assert WeatherSkill.display_name("en") == "Weather"
    assert WeatherSkill.display_name("fr") == "天气"

    class Bare(AISkillPlugin):
        name = "bare"

    assert Bare.display_name("zh") == "bare"
    assert Bare.help_text() == "bare"
