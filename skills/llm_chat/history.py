"""Conversation history → chat messages within a token budget (a cheap estimate, no tokenizer)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

# CJK ideographs, kana, hangul and full-width punctuation: about one token each in common
# tokenizers; other text averages about four characters per token.
_WIDE = re.compile(r"[\u1100-\u11ff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
MESSAGE_OVERHEAD = 4  # role markers and separators the chat template adds per message
ROLES = ("user", "assistant")


def estimate_tokens(text: str) -> int:
    """A deliberately cheap over-estimate of the tokens `text` costs."""
    wide = len(_WIDE.findall(text))
    return wide + math.ceil((len(text) - wide) / 4)


def message_tokens(message: dict[str, str]) -> int:
    return estimate_tokens(message["content"]) + MESSAGE_OVERHEAD


def _content(message: dict[str, Any]) -> str:
    """The text of a history entry: the session stores {"role", "text"}, chat APIs use "content"."""
    value = message.get("content", message.get("text"))
    return value if isinstance(value, str) else ""


def trim_history(history: Sequence[object], budget: int) -> list[dict[str, str]]:
    """The newest earlier turns that fit in `budget` tokens, oldest first.

    Drops malformed entries and system messages (the skill owns the system prompt), stops at
    the first turn that does not fit (no gaps in the conversation), and never starts with an
    assistant turn because several chat templates require user/assistant alternation.
    """
    clean = [
        {"role": m["role"], "content": _content(m)}
        for m in history
        if isinstance(m, dict) and m.get("role") in ROLES and _content(m)
    ]
    kept: list[dict[str, str]] = []
    used = 0
    for message in reversed(clean):
        cost = message_tokens(message)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    return kept


def build_messages(
    system_prompt: str, history: Sequence[object], question: str, budget: int
) -> list[dict[str, str]]:
    """system prompt + trimmed history + the current question, ready for chat.completions."""
    # The session may already hold the current message as its last user turn; send it once.
    if history and isinstance(history[-1], dict) and history[-1].get("role") == "user" \
            and _content(history[-1]) == question:
        history = history[:-1]
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages += trim_history(history, budget)
    messages.append({"role": "user", "content": question})
    return messages
