"""Keyword side of hybrid search: English words (stemmed by PostgreSQL) and Chinese character bigrams."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z0-9]+")
# One-character Chinese query words that match nearly everything.
_CJK_STOP = frozenset("的了是在和与或及也都就而把被吗呢吧啊我你他她它们个有")
# Question words: in a query they say nothing about the topic ("年假有多少天" → 年假, 天).
_CJK_QUERY_STOP = frozenset({
    "什么", "多少", "怎么", "怎样", "如何", "是否", "可以", "哪些", "哪个", "为什么", "有没", "没有",
    "请问", "我们", "公司", "是多", "有多", "有几", "几天", "要求", "规定", "一下",
})


@dataclass(frozen=True)
class Terms:
    """Space-separated tokens for to_tsvector/to_tsquery: `english` for the english config, `cjk` for simple."""

    english: str
    cjk: str


def _bigrams(run: str) -> list[str]:
    return [run[i:i + 2] for i in range(len(run) - 1)] if len(run) > 1 else [run]


def document_terms(text: str) -> Terms:
    """Tokens to index: every Latin word, and bigrams plus single characters of Chinese runs.

    Chinese has no spaces, so PostgreSQL's parsers see a whole clause as one word; overlapping
    bigrams are the usual dictionary-free substitute for segmentation.
    """
    lowered = text.lower()
    cjk: list[str] = []
    for run in _CJK_RUN.findall(lowered):
        cjk.extend(_bigrams(run))
        if len(run) > 1:
            cjk.extend(ch for ch in run if ch not in _CJK_STOP)
    return Terms(" ".join(_LATIN_WORD.findall(lowered)), " ".join(cjk))


def query_terms(text: str) -> Terms:
    """Tokens of a question, OR-ed by the caller: bigrams (single characters only for 1-char runs)."""
    lowered = text.lower()
    cjk: list[str] = []
    for run in _CJK_RUN.findall(lowered):
        cjk.extend(b for b in _bigrams(run) if b not in _CJK_STOP and b not in _CJK_QUERY_STOP)
    words = list(dict.fromkeys(_LATIN_WORD.findall(lowered)))
    return Terms(" | ".join(words), " | ".join(dict.fromkeys(cjk)))
