"""The skill contract: Turn in, Reply out, three hooks, a typed Config, declared intents."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Iterator


@dataclass(frozen=True)
class Turn:
    """One user message as a skill sees it (JSON primitives only; travels between tasks)."""

    msg_id: str
    tenant_id: str
    conversation_id: str
    conversation_type: str  # "1" private, "2" group
    user_id: str
    user_nick: str = ""
    text: str = ""
    msgtype: str = "text"
    intent: str = ""
    skill: str = ""
    confidence: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, str]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    locale: str = "zh-CN"
    received_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Turn":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def replace(self, **changes: Any) -> "Turn":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Reply:
    """What a skill answers: text or markdown (and later cards); the workers deliver it."""

    text: str
    kind: str = "text"  # text | markdown | action_card | ai_card
    title: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Reply":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class SkillError(Exception):
    """A skill could not answer; `user_message` is shown to the user instead of a stack trace."""

    def __init__(self, message: str, user_message: str = "") -> None:
        super().__init__(message)
        self.user_message = user_message


@dataclass(frozen=True)
class SkillConfig:
    """Base of every skill's typed Config; subclasses add fields with defaults."""


class AISkillPlugin:
    """Base class of skills; the subclass docstring is the help text users see."""

    name: ClassVar[str] = ""
    intents: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[SkillConfig]] = SkillConfig
    timeout_seconds: ClassVar[float] = 20.0

    def __init__(self, config: SkillConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def help_text(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or cls.name)

    def pre_process(self, turn: Turn) -> Turn:
        """Adjust the turn before execute (parse parameters, check permissions)."""
        return turn

    def execute(self, turn: Turn) -> Reply | Iterator[str]:
        """Answer the turn: a Reply, or an iterator of text chunks for a streaming card."""
        raise NotImplementedError

    def post_process(self, turn: Turn, result: Reply) -> Reply:
        """Adjust the reply after execute (formatting, citations)."""
        return result
