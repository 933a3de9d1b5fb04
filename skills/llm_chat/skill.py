"""The LLM chat skill: streams an OpenAI-compatible server's answer as text chunks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import openai

from skills.api import AISkillPlugin, Reply, SkillConfig, SkillError, Turn, endpoint_of
from skills.llm_chat.examples import EXAMPLES
from skills.llm_chat.history import build_messages
from skills.llm_chat.phrases import phrase

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are the company's assistant inside DingTalk. Answer in the language the user writes in, "
    "be concise and accurate, use Markdown sparingly, and say so when you do not know."
)


@dataclass(frozen=True)
class LLMChatConfig(SkillConfig):
    """Knobs of the chat skill; prompt and temperature are the audited admin settings. The workers
    fill the server, model, key, max tokens and read timeout from LLM_* (below a tenant's overrides);
    with no base URL the skill says politely that chat is not set up."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float = 0.7
    max_tokens: int = 2048
    history_token_budget: int = 3000  # estimated tokens of earlier turns sent along
    connect_timeout_seconds: float = 5.0
    # longest silence: before the first token or between two (LLM_READ_TIMEOUT_SECONDS)
    read_timeout_seconds: float = 30.0
    total_timeout_seconds: float = 90.0  # whole answer; below the run_skill stage limit
    base_url: str = ""  # OpenAI-compatible, with /v1
    model: str = ""  # empty: the server's first
    api_key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError("temperature must be between 0 and 2")
        if self.max_tokens <= 0 or self.history_token_budget < 0:
            raise ValueError("max_tokens must be positive and history_token_budget not negative")
        if min(self.connect_timeout_seconds, self.read_timeout_seconds, self.total_timeout_seconds) <= 0:
            raise ValueError("timeouts must be positive")


def _fault(exc: openai.OpenAIError) -> str:
    """The phrase key for an OpenAI client error."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.RateLimitError):
        return "busy"
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return "auth"
    if isinstance(exc, openai.APIStatusError) and exc.status_code < 500:
        return "rejected"
    return "unavailable"


class ChatStream(Iterator[str]):
    """The answer's text chunks from one open streamed completion.

    Faults while reading raise SkillError with a polite `user_message`; a stream that ends
    without a finish reason was cut. `close()` may be called from another thread (a Stop
    button): the reader then ends quietly instead of reporting a fault.
    """

    def __init__(self, stream: Any, *, deadline: float, locale: str, msg_id: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._deadline = deadline
        self._clock = clock
        self._locale = locale
        self._msg_id = msg_id
        self._closed = False
        self.finish_reason: str | None = None
        # What the server counted ({"prompt_tokens", "completion_tokens"}), from its final usage chunk.
        self.usage: dict[str, int] = {}
        self._pieces = self._read()

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        self._closed = True
        try:
            self._stream.close()
        except Exception:  # closing a half-read socket from another thread may complain; it is closed
            log.debug("closing the LLM stream raised", exc_info=True)

    def _fail(self, key: str, detail: str) -> SkillError:
        self.close()
        log.warning("llm stream fault msg_id=%s kind=%s: %s", self._msg_id, key, detail)
        return SkillError(f"LLM {key}: {detail}", phrase(key, self._locale))

    def _read(self) -> Iterator[str]:
        try:
            for chunk in self._stream:
                if self._clock() > self._deadline:
                    raise self._fail("timeout", "total answer time exceeded")
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self.usage = {"prompt_tokens": int(usage.prompt_tokens or 0),
                                  "completion_tokens": int(usage.completion_tokens or 0)}
                if not chunk.choices:
                    continue  # the usage chunk
                choice = chunk.choices[0]
                if choice.delta is not None and choice.delta.content:
                    yield choice.delta.content
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
        except openai.OpenAIError as exc:
            if self._closed:
                return
            raise self._fail("interrupted" if _fault(exc) == "unavailable" else _fault(exc), repr(exc)) from exc
        if self._closed:
            return
        if self.finish_reason is None:
            raise self._fail("interrupted", "stream ended without a finish reason")
        if self.finish_reason == "length":
            yield phrase("truncated", self._locale)


class LLMChatSkill(AISkillPlugin):
    """Chat with the AI assistant: ask anything in Chinese or English, follow-up questions keep the context.

    与 AI 助手对话：中文或英文提问均可，追问会沿用上下文。
    """

    name = "llm_chat"
    intents = ("chat",)
    examples = EXAMPLES
    label = {"zh": "AI 对话", "en": "Chat with AI"}
    Config = LLMChatConfig
    timeout_seconds = 100.0
    # Answers are a stream: the skills worker runs execute inside an AI card's iterator.
    streams = True
    kind = "io"  # waits on the LLM server for the whole answer

    def __init__(self, config: SkillConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config)
        assert isinstance(self.config, LLMChatConfig)
        self.cfg: LLMChatConfig = self.config
        self._clock = clock  # monotonic seconds; tests pass one they move by hand
        self._lock = threading.Lock()
        self._client: openai.OpenAI | None = None
        self._model = self.cfg.model

    @property
    def configured(self) -> bool:
        return bool(self.cfg.base_url)

    def recipients(self) -> tuple[str, ...]:
        return (f"llm:{endpoint_of(self.cfg.base_url)}",) if self.configured else ()

    def ai_core(self) -> str:
        return endpoint_of(self.cfg.base_url) if self.configured else ""

    def client(self) -> openai.OpenAI:
        """One pooled client per skill instance (thread-safe); no client-side retries, the pipeline retries."""
        with self._lock:
            if self._client is None:
                cfg = self.cfg
                self._client = openai.OpenAI(
                    base_url=cfg.base_url,
                    # The client insists on a key; servers without auth ignore it.
                    api_key=cfg.api_key or "not-needed",
                    max_retries=0,
                    timeout=openai.Timeout(
                        cfg.total_timeout_seconds,
                        connect=cfg.connect_timeout_seconds,
                        read=cfg.read_timeout_seconds,
                        write=cfg.connect_timeout_seconds,
                        pool=cfg.connect_timeout_seconds,
                    ),
                )
            return self._client

    def model(self) -> str:
        """LLM_MODEL, or the first model the server lists (llama.cpp, vLLM, Ollama and the stub all list)."""
        if not self._model:
            models = self.client().models.list()
            self._model = models.data[0].id if models.data else "default"
        return self._model

    def execute(self, turn: Turn) -> Reply | Iterator[str]:
        """Open the streamed completion now (so refusals surface here) and return its chunks."""
        if not self.configured:
            return Reply(text=phrase("not_configured", turn.locale), meta={"llm": "not_configured"})
        question = turn.text.strip()
        if not question:
            return Reply(text=phrase("empty", turn.locale))
        cfg = self.cfg
        messages = build_messages(cfg.system_prompt, turn.history, question, cfg.history_token_budget)
        started = self._clock()
        try:
            # Plain {role, content} dicts: openai's overloads want per-role TypedDicts.
            stream = self.client().chat.completions.create(  # type: ignore[call-overload]
                model=self.model(),
                messages=messages,
                temperature=cfg.temperature,
                max_tokens=cfg.max_tokens,
                stream=True,
                stream_options={"include_usage": True},  # tokens in and out, for the operators' metrics
            )
        except openai.OpenAIError as exc:
            key = _fault(exc)
            log.warning("llm request failed msg_id=%s kind=%s: %r", turn.msg_id, key, exc)
            raise SkillError(f"LLM {key}: {exc!r}", phrase(key, turn.locale)) from exc
        return ChatStream(
            stream, deadline=started + cfg.total_timeout_seconds, locale=turn.locale, msg_id=turn.msg_id,
            clock=self._clock,
        )
