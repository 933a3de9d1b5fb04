"""The help skill lists every registered skill with its help text."""

from __future__ import annotations

from skills import registry
from skills.help.skill import HelpSkill
from testkit.personas import alice


def test_it_lists_every_skill_with_its_docstring():
    reply = HelpSkill().execute(alice.turn("help"))
    assert reply.kind == "markdown"
    for name in registry.skill_names():
        assert f"**{name}**" in reply.text
    assert "日程提醒" in reply.text and "Document search" in reply.text
