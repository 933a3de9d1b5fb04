"""Answers from retrieved chunks: citations, the grounded LLM prompt, and the passages-only reply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from skills.docsearch.store import Hit

MAX_PASSAGE_CHARS = 600


def citation(hit: Hit) -> str:
    """《Title》 › Section — the document and heading path a chunk came from."""
    return f"《{hit.title}》 › {hit.section}" if hit.section else f"《{hit.title}》"


def citations(hits: Sequence[Hit]) -> list[dict[str, str]]:
    """Distinct sources in rank order, as JSON primitives for Reply.meta."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for hit in hits:
        seen.setdefault((hit.title, hit.section), {
            "title": hit.title, "section": hit.section, "collection": hit.collection, "filename": hit.filename,
        })
    return list(seen.values())


def sources_block(hits: Sequence[Hit], lang: str) -> str:
    lines = [f"[{i}] {citation(h)}" for i, h in enumerate(_distinct(hits), start=1)]
    return ("**来源**\n" if lang == "zh" else "**Sources**\n") + "\n".join(lines)


def _distinct(hits: Sequence[Hit]) -> list[Hit]:
    seen, out = set(), []
    for hit in hits:
        if (hit.title, hit.section) not in seen:
            seen.add((hit.title, hit.section))
            out.append(hit)
    return out


SYSTEM_PROMPT = {
    "zh": (
        "你是企业内部文档助手。只根据下面编号的文档摘录回答问题，不要使用摘录以外的知识。"
        "如果摘录中没有答案，就直接说“文档中没有找到相关内容”。"
        "在用到的句子后用 [编号] 标注来源。用中文简洁回答。"
    ),
    "en": (
        "You are an internal company document assistant. Answer ONLY from the numbered excerpts "
        "below; do not use any other knowledge. If the excerpts do not contain the answer, say "
        "\"The documents do not cover this.\" Cite sources as [n] after the sentences that use them. "
        "Answer concisely in English."
    ),
}


def build_messages(question: str, hits: Sequence[Hit], lang: str) -> list[dict[str, str]]:
    """Chat messages for an OpenAI-compatible server: the rules, the excerpts, then the question."""
    excerpts = "\n\n".join(
        f"[{i}] {citation(h)}\n{h.content[:MAX_PASSAGE_CHARS * 2]}" for i, h in enumerate(hits, start=1)
    )
    label = ("文档摘录", "问题") if lang == "zh" else ("Excerpts", "Question")
    return [
        {"role": "system", "content": SYSTEM_PROMPT["zh" if lang == "zh" else "en"]},
        {"role": "user", "content": f"{label[0]}:\n\n{excerpts}\n\n{label[1]}: {question}"},
    ]


def passages_markdown(hits: Sequence[Hit], lang: str) -> str:
    """Without an LLM: the best passages themselves, each under its citation."""
    intro = "以下是文档中最相关的内容：" if lang == "zh" else "The most relevant passages I found:"
    parts = [intro]
    for i, hit in enumerate(hits, start=1):
        text = hit.content if len(hit.content) <= MAX_PASSAGE_CHARS else hit.content[:MAX_PASSAGE_CHARS] + "…"
        parts.append(f"**[{i}] {citation(hit)}**\n\n> " + text.replace("\n", "\n> "))
    return "\n\n".join(parts)


class AnswerWriter(Protocol):
    """Writes an answer from chat messages (an LLM); raises on any failure."""

    def __call__(self, messages: list[dict[str, str]]) -> str: ...


@dataclass(frozen=True)
class OpenAIAnswerWriter:
    """Any OpenAI-compatible server (llama.cpp, vLLM, Ollama); `openai` is imported on first use."""

    base_url: str
    api_key: str
    model: str
    max_tokens: int = 1024
    timeout_seconds: float = 30.0

    def __call__(self, messages: list[dict[str, str]]) -> str:
        from openai import OpenAI

        client = OpenAI(base_url=self.base_url, api_key=self.api_key or "none",
                        timeout=self.timeout_seconds, max_retries=0)
        response = client.chat.completions.create(
            model=self.model, max_tokens=self.max_tokens, temperature=0.1,
            messages=messages,  # type: ignore[arg-type]  # plain {role, content} dicts; openai wants per-role TypedDicts
        )
        text = (response.choices[0].message.content or "").strip()
        if not text:
            raise ValueError("the LLM returned an empty answer")
        return text
