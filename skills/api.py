"""The skill contract: Turn in, Reply out, three hooks, a typed Config, declared intents."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, Union
from urllib.parse import urlsplit

from skills.language import is_chinese

C = TypeVar("C", bound="SkillConfig")

# What a skill mostly does while it answers: "io" waits on a server (an LLM stream, a remote
# REST skill) and may run by the tens at once; "cpu" computes (embeddings, parsing) and is
# bounded by the cores. The workers pick the skill's queue by it.
SkillKind = Literal["cpu", "io"]
SKILL_KINDS: tuple[SkillKind, ...] = ("cpu", "io")


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
    # {skill name: help text} of the skills this tenant may use; filled by the workers only for
    # skills that declare `needs_catalog` (help menus), so a disabled skill is never advertised.
    catalog: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def replace(self, **changes: Any) -> Turn:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Reply:
    """What a skill answers: text or markdown (and later cards); the workers deliver it."""

    text: str
    kind: str = "text"  # text | markdown | action_card | ai_card
    title: str = ""
    buttons: list[dict[str, Any]] = field(default_factory=list)  # {title, action, params} or {title, url}
    card: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def endpoint_of(url: str) -> str:
    """scheme://host[:port]/path of a URL: where data goes, without credentials or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if host else ""


class SkillError(Exception):
    """A skill could not answer; `user_message` is shown to the user instead of a stack trace."""

    def __init__(self, message: str, user_message: str = "") -> None:
        super().__init__(message)
        self.user_message = user_message


class ConfigError(ValueError):
    """A skill's configuration does not fit its Config schema (unknown key, wrong type, bad value)."""


def _check(owner: str, key: str, hint: Any, value: Any) -> Any:
    """`value` if it fits the type hint `hint` (JSON shapes: lists become tuples where asked)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return _check(owner, key, option, value)
            except ConfigError:
                continue
        raise ConfigError(f"{owner}.{key}: {value!r} is not a {hint}")
    if hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple, Sequence) or hint in (list, tuple):
        if isinstance(value, (list, tuple)):
            item = args[0] if args else Any
            items = [_check(owner, f"{key}[{i}]", item, v) for i, v in enumerate(value)]
            return tuple(items) if (origin or hint) is tuple else items
    elif origin in (dict, Mapping) or hint is dict:
        if isinstance(value, dict):
            return dict(value)
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:  # an exotic hint (Literal...): trust the dataclass's own __post_init__
        return value
    expected = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{owner}.{key}: expected {expected}, got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class SkillConfig:
    """Base of every skill's typed Config; subclasses add fields with defaults.

    Subclasses are frozen dataclasses whose every field has a default; `__post_init__` may check
    values (raise ValueError). Admin overrides arrive as JSON and go through `from_dict`.
    """

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None = None) -> C:
        """The defaults overridden by `data`; ConfigError names any unknown key or wrong type."""
        data = dict(data or {})
        owner = cls.__qualname__
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"{owner}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        values = {key: _check(owner, key, hints.get(key, Any), value) for key, value in data.items()}
        try:
            return cls(**values)
        except (TypeError, ValueError, LookupError) as exc:  # LookupError: e.g. an unknown time zone
            raise ConfigError(f"{owner}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def secret_keys(cls) -> frozenset[str]:
        """Fields declared with repr=False (API keys, tokens): never shown or audited in clear."""
        return frozenset(f.name for f in dataclasses.fields(cls) if not f.repr)

    @classmethod
    def schema(cls) -> dict[str, dict[str, Any]]:
        """{key: {"type", "default"}} for admin help text; secrets show no default."""
        hints = typing.get_type_hints(cls)
        defaults = cls().to_dict()
        secret = cls.secret_keys()
        return {
            f.name: {
                "type": getattr(hints.get(f.name), "__name__", str(hints.get(f.name))),
                "default": "***" if f.name in secret else defaults[f.name],
            }
            for f in dataclasses.fields(cls) if f.init
        }


class AISkillPlugin:
    """Base class of skills; the subclass docstring is the help text users see."""

    name: ClassVar[str] = ""
    intents: ClassVar[tuple[str, ...]] = ()
    # intent → example utterances, Chinese and English mixed (at least 20 per language); they seed
    # the router's training data in the database.
    examples: ClassVar[Mapping[str, Sequence[str]]] = {}
    # A short name per language for menus and clarifying questions: {"zh": "日程提醒", "en": "Schedule"}.
    label: ClassVar[Mapping[str, str]] = {}
    Config: ClassVar[type[SkillConfig]] = SkillConfig
    timeout_seconds: ClassVar[float] = 20.0
    # True for skills that describe the others (help): the turn then carries `catalog`.
    needs_catalog: ClassVar[bool] = False
    # "cpu" unless the skill mostly waits (see SkillKind); a cheap skill may declare either.
    kind: ClassVar[SkillKind] = "cpu"

    def __init__(self, config: SkillConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    @classmethod
    def help_text(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or cls.name)

    @classmethod
    def display_name(cls, lang: str) -> str:
        """The label in `lang` ("zh"/"en"), else in the other language, else the skill's name."""
        return cls.label.get(lang) or next(iter(cls.label.values()), "") or cls.name

    @classmethod
    def examples_by_language(cls) -> dict[str, dict[str, list[str]]]:
        """{intent: {"zh": [...], "en": [...]}} of the shipped examples."""
        out: dict[str, dict[str, list[str]]] = {}
        for intent in cls.intents:
            texts = list(cls.examples.get(intent, ()))
            out[intent] = {
                "zh": [t for t in texts if is_chinese(t)],
                "en": [t for t in texts if not is_chinese(t)],
            }
        return out

    def recipients(self) -> tuple[str, ...]:
        """External services that receive the turn's text when this skill answers, as
        "kind:endpoint" (the data-flow audit); none for a skill that answers on its own."""
        return ()

    def ai_core(self) -> str:
        """The AI core (an LLM server's endpoint) whose answer slots this skill holds while it
        answers; the workers bound concurrent answers per endpoint (LLM_MAX_CONCURRENCY). "" = none."""
        return ""

    def pre_process(self, turn: Turn) -> Turn:
        """Adjust the turn before execute (parse parameters, check permissions)."""
        return turn

    def execute(self, turn: Turn) -> Reply | Iterator[str]:
        """Answer the turn: a Reply, or an iterator of text chunks for a streaming card."""
        raise NotImplementedError

    def post_process(self, turn: Turn, result: Reply) -> Reply:
        """Adjust the reply after execute (formatting, citations)."""
        return result
