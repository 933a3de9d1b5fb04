"""Registry-level checks of schedule (its behaviour is tested in tests/skills/schedule/)."""

from __future__ import annotations

import pytest

from skills import registry
from skills.api import ConfigError


def test_it_builds_with_the_django_store_named_in_its_config():
    skill = registry.build("schedule", {"default_timezone": "Europe/Berlin"})
    assert skill.config.store == "webapp.actions.reminder_store:DjangoReminderStore"
    assert skill._store is None  # imported on first use, inside the skills worker


def test_an_unknown_time_zone_is_a_config_error():
    with pytest.raises(ConfigError):
        registry.build("schedule", {"default_timezone": "Mars/Olympus"})
