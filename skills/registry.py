"""The explicit skill registry: {name: dotted path}, imported lazily; intent → skill; the fallback skill."""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

from skills.api import AISkillPlugin, SkillConfig

# One line per built-in skill. Skills served elsewhere are RemoteSkill rows (admin), not entries here.
# docsearch builds its store lazily from its Config (the pgvector URL); schedule is given its
# ReminderStore by whoever builds it (`build("schedule", config, store=...)`).
SKILLS: dict[str, str] = {
    "echo": "skills.echo.skill:EchoSkill",
    "help": "skills.help.skill:HelpSkill",
    "llm_chat": "skills.llm_chat.skill:LLMChatSkill",
    "docsearch": "skills.docsearch.skill:DocSearchSkill",
    "schedule": "skills.schedule.skill:ScheduleSkill",
}

# The last-resort answer when nothing else may answer (no LLM configured, fallbacks disabled).
FALLBACK_SKILL = "echo"
# Out-of-scope messages go to the first of these that is available and enabled.
FALLBACK_ORDER: tuple[str, ...] = ("llm_chat", "echo", "help")


class UnknownSkill(LookupError):
    """No skill is registered under this name or intent."""


def skill_names() -> tuple[str, ...]:
    return tuple(SKILLS)


@cache
def skill_class(name: str) -> type[AISkillPlugin]:
    """Import the class registered under `name` (first use only)."""
    try:
        dotted = SKILLS[name]
    except KeyError:
        raise UnknownSkill(f"no skill named {name!r}") from None
    module_name, _, attr = dotted.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, AISkillPlugin)):
        raise TypeError(f"{dotted} is not an AISkillPlugin")
    return cls


def build(name: str, config: SkillConfig | Mapping[str, Any] | None = None, **collaborators: Any) -> AISkillPlugin:
    """A new instance of skill `name`; a mapping of overrides is validated against its Config.
    `collaborators` go to the constructor as they are (e.g. schedule's `store=`)."""
    cls = skill_class(name)
    if config is None or isinstance(config, Mapping):
        config = cls.Config.from_dict(config or {})
    return cls(config, **collaborators)  # subclasses take keyword collaborators (schedule: store=)


def intent_map() -> dict[str, str]:
    """{intent: skill name} of every built-in skill."""
    return {intent: name for name in SKILLS for intent in skill_class(name).intents}


def skill_for_intent(intent: str) -> str:
    """The name of the built-in skill that declares `intent`."""
    try:
        return intent_map()[intent]
    except KeyError:
        raise UnknownSkill(f"no skill declares intent {intent!r}") from None


def fallback_skill(enabled: Collection[str] | None = None, *, llm_configured: bool = False) -> str:
    """The skill for out-of-scope messages: chat when an LLM is configured (LLM_BASE_URL, known to
    the caller), else echo.

    `enabled` limits the choice to the tenant's enabled skills; when none of the fallbacks is
    enabled the message still gets an answer from FALLBACK_SKILL.
    """
    for name in FALLBACK_ORDER:
        if name == "llm_chat" and not llm_configured:
            continue
        if enabled is None or name in enabled:
            return name
    return FALLBACK_SKILL
