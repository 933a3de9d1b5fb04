"""The admin settings (runtime knobs) the product knows: key, meaning, default and validation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skills import registry
from skills.api import ConfigError


class KnobError(ValueError):
    """An admin setting key is unknown or its value does not validate."""


@dataclass(frozen=True)
class Knob:
    """One runtime knob. With `skill`/`field` set, its value overrides that field of the skill's
    Config for every tenant (a tenant's own SkillSetting config still wins)."""

    key: str
    help: str
    default: Any = None
    check: Callable[[Any], Any] | None = None
    skill: str = ""
    field: str = ""

    def clean(self, value: Any) -> Any:
        if value is None:
            return None  # back to the default
        if self.skill:
            cfg_cls = registry.skill_class(self.skill).Config
            try:
                cleaned = cfg_cls.from_dict({self.field: value})
            except ConfigError as exc:
                raise KnobError(f"{self.key}: {exc}") from exc
            return getattr(cleaned, self.field)
        assert self.check is not None
        try:
            return self.check(value)
        except (TypeError, ValueError) as exc:
            raise KnobError(f"{self.key}: {exc}") from exc


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) <= 1:
        raise ValueError(f"expected a number in (0, 1], got {value!r}")
    return float(value)


KNOBS: dict[str, Knob] = {
    k.key: k
    for k in (
        Knob("llm.system_prompt", "System prompt of the chat skill", skill="llm_chat", field="system_prompt"),
        Knob("llm.temperature", "Sampling temperature of the chat skill (0-2)", skill="llm_chat",
             field="temperature"),
        Knob("privacy.mask_external", "Replace mobile, resident ID, bank card numbers and e-mail addresses "
             "with placeholders in text sent to external LLMs and remote skills (restored in the reply)",
             default=True, check=_boolean),
        Knob("router.high_confidence", "At or above this confidence a message goes straight to its skill; "
             "below it the user is asked to choose", default=0.6, check=_probability),
        Knob("router.option_floor", "A skill is offered in the clarifying question only with at least "
             "this probability", default=0.1, check=_probability),
    )
}


def knob(key: str) -> Knob:
    try:
        return KNOBS[key]
    except KeyError:
        raise KnobError(f"unknown admin setting {key!r}; known: {sorted(KNOBS)}") from None
