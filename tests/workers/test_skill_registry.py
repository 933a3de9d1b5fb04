"""The registry: every entry imports, intents are unique, defaults are valid, skills stay pure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from skills import registry
from skills.api import AISkillPlugin, SkillConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", registry.skill_names())
def test_every_registered_skill_imports_with_valid_defaults(name):
    cls = registry.skill_class(name)
    assert issubclass(cls, AISkillPlugin)
    assert cls.name == name
    assert cls.intents, f"{name} declares no intent"
    assert isinstance(cls().config, SkillConfig)
    assert cls.help_text().strip()
    assert 0 < cls.timeout_seconds <= 120


def test_intents_are_unique_across_skills():
    intents = [i for n in registry.skill_names() for i in registry.skill_class(n).intents]
    assert len(intents) == len(set(intents))


def test_the_fallback_skill_and_intent_lookup_exist():
    assert registry.FALLBACK_SKILL in registry.skill_names()
    assert registry.skill_for_intent("help") == "help"
    with pytest.raises(registry.UnknownSkill):
        registry.skill_for_intent("no-such-intent")
    with pytest.raises(registry.UnknownSkill):
        registry.skill_class("no-such-skill")


def test_the_listener_side_can_publish_without_loading_django_or_the_stages():
    # The listener imports workers.pipeline to publish; it must not pull in Django settings,
    # the webapp, the task module or the skills.
    code = (
        "import sys, workers.pipeline as p; p.build_chain({'msg_id': 'm'}); "
        "bad = [m for m in sys.modules if m.startswith(('webapp', 'workers.tasks', 'skills', "
        "'django.db', 'django.conf'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_celery_workers_load_the_task_module():
    from workers.celery import app

    assert "workers.tasks" in app.conf.imports


def test_the_app_has_no_automatic_django_fixup_that_reconnects_around_every_task():
    from workers.celery import app

    assert not app.fixups


def test_published_stages_do_not_carry_the_user_text_in_their_headers():
    from workers.pipeline import build_chain

    sig = build_chain({"msg_id": "m", "payload": {"text": {"content": "secret salary"}}})
    for task_sig in sig.tasks:
        assert task_sig.options["argsrepr"] == "(<payload>,)"
