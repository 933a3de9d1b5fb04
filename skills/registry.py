"""The explicit skill registry: {name: dotted path}, imported lazily; intent → skill name."""

from __future__ import annotations

import importlib
import threading
from functools import lru_cache

from skills.api import AISkillPlugin, SkillConfig

# One line per skill; the skill routing of issue 4 adds entries here (and per-tenant settings).
SKILLS: dict[str, str] = {
    "echo": "skills.echo.skill:EchoSkill",
    "help": "skills.help.skill:HelpSkill",
    "llm_chat": "skills.llm_chat.skill:LLMChatSkill",
    "docsearch": "skills.docsearch.skill:DocSearchSkill",
    "schedule": "skills.schedule.skill:ScheduleSkill",
}

# The skill that answers when no intent matched.
FALLBACK_SKILL = "echo"

_instances: dict[str, AISkillPlugin] = {}
_lock = threading.Lock()


class UnknownSkill(LookupError):
    """No skill is registered under this name or intent."""


def skill_names() -> tuple[str, ...]:
    return tuple(SKILLS)


@lru_cache(maxsize=None)
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


def get_skill(name: str, config: SkillConfig | None = None) -> AISkillPlugin:
    """A skill instance; default-configured instances are shared (skills keep no turn state)."""
    if config is not None:
        return skill_class(name)(config)
    with _lock:
        if name not in _instances:
            _instances[name] = skill_class(name)()
        return _instances[name]


def skill_for_intent(intent: str) -> str:
    """The name of the skill that declares `intent`."""
    for name in SKILLS:
        if intent in skill_class(name).intents:
            return name
    raise UnknownSkill(f"no skill declares intent {intent!r}")
