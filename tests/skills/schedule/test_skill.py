"""Registry-level checks of schedule (its behaviour is tested in tests/skills/schedule/)."""

from __future__ import annotations

import pytest

from skills import registry
from skills.api import ConfigError, SkillError
from skills.schedule.skill import ScheduleConfig, ScheduleSkill
from testkit.personas import make_turn
from tests.skills.schedule.reminder_store import MemoryReminderStore


def test_it_builds_from_its_config_with_the_store_it_is_handed():
    store = MemoryReminderStore()
    skill = registry.build("schedule", {"default_timezone": "Europe/Berlin"}, store=store)
    assert isinstance(skill, ScheduleSkill) and isinstance(skill.config, ScheduleConfig)
    assert skill.config.default_timezone == "Europe/Berlin" and skill.store is store
    assert "store" not in skill.config.to_dict()  # no dotted path to import: the builder injects it


def test_without_a_store_the_user_hears_the_schedule_is_unavailable():
    with pytest.raises(SkillError) as declined:
        registry.build("schedule").execute(make_turn("我明天有什么安排", locale="zh-CN"))
    assert declined.value.user_message == "日程服务暂时不可用，请稍后再试。"


def test_an_unknown_time_zone_is_a_config_error():
    with pytest.raises(ConfigError):
        registry.build("schedule", {"default_timezone": "Mars/Olympus"})
