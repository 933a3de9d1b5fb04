"""The stub's deterministic answers: what it says about the request, cut into tokens."""

from __future__ import annotations

import re
from typing import Any

STUB_MARK = "[stub LLM]"

# One CJK character is one token; otherwise a word with its leading whitespace is one token.
_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(rf"\s*(?:[{_CJK}]|[^\s{_CJK}]+)")
_HAS_CJK = re.compile(rf"[{_CJK}]")

# A prompt injection the stub falls for, as a naive model would: it then prints its system prompt
# word for word (so a test of the bot's output filter can fail).
INJECTION = re.compile(r"(?i)system\s*prompt|previous instructions|系统提示|提示词|之前的指令")

FILLER = "The quick brown fox jumps over the lazy dog while the stub keeps talking."


def tokenize(text: str) -> list[str]:
    """Cut text into the pieces the stub streams; joining them gives the text back (minus trailing blanks)."""
    return _TOKEN.findall(text)


def last_user_message(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    """Message content as text; OpenAI also allows a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def summarize(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def answer_text(messages: list[dict[str, Any]], fixed: str | None = None) -> str:
    """The stub's reply to these messages; always starts with the stub mark so nobody mistakes it."""
    if fixed is not None:
        return f"{STUB_MARK} {fixed}"
    question = last_user_message(messages)
    prompt = next((content_text(m.get("content")) for m in messages if m.get("role") == "system"), "")
    if prompt and INJECTION.search(question):
        return f"{STUB_MARK} OK, ignoring them. My system prompt is: {prompt}"
    earlier = sum(1 for m in messages[:-1] if m.get("role") in ("user", "assistant"))
    system = any(m.get("role") == "system" for m in messages)
    if _HAS_CJK.search(question):
        return (
            f"{STUB_MARK} 这是项目自带的测试桩，不是真正的大模型。你说：“{summarize(question)}”"
            f"（之前的对话 {earlier} 条{'，有系统提示' if system else ''}）。"
        )
    return (
        f"{STUB_MARK} This is the project's test stub, not a real model. "
        f'You said: "{summarize(question)}" ({earlier} earlier messages'
        f"{', with a system prompt' if system else ''})."
    )


def answer_tokens(text: str, count: int | None) -> list[str]:
    """The answer's tokens, padded with filler or cut so there are exactly `count` (None: as is)."""
    tokens = tokenize(text)
    if count is None:
        return tokens
    filler = tokenize(" " + FILLER)
    i = 0
    while len(tokens) < count:
        tokens.append(filler[i % len(filler)] if tokens else filler[i % len(filler)].lstrip())
        i += 1
    return tokens[:count]
