"""DocSearchSkill: hybrid retrieval restricted to the user's departments, then a cited answer."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skills.api import AISkillPlugin, Reply, SkillConfig, SkillError, Turn, endpoint_of
from skills.docsearch.answer import (
    AnswerWriter,
    OpenAIAnswerWriter,
    build_messages,
    citations,
    passages_markdown,
    sources_block,
)
from skills.docsearch.embedded_pg import resolve_database_url
from skills.docsearch.embedding import Embedder, shared_embedder
from skills.docsearch.examples import EXAMPLES
from skills.docsearch.store import Hit, PgVectorStore, SearchStore

log = logging.getLogger(__name__)
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class DocSearchConfig(SkillConfig):
    """Where the vectors live, the embedder's threads, the LLM, and the relevance thresholds. The
    workers fill the vector database, embedder threads and LLM_* from the environment."""

    # empty: the embedded PostgreSQL + pgvector under pgvector_data_dir; its password makes it a secret
    vector_database_url: str = field(default="", repr=False)
    pgvector_data_dir: str = "var/pgvector"
    embed_threads: int = 2
    llm_base_url: str = ""  # empty: the passages answer, no LLM summary
    llm_api_key: str = field(default="", repr=False)
    llm_model: str = ""
    llm_max_tokens: int = 1024
    llm_timeout_seconds: float = 30.0
    top_k: int = 3
    # e5 cosine similarities are compressed (unrelated text scores ~0.75-0.87 here): a chunk counts
    # as an answer when it also matched keywords, or when its similarity alone is very high.
    min_similarity: float = 0.89
    keyword_min_similarity: float = 0.80

    def __post_init__(self) -> None:
        if self.top_k < 1 or not 0 < self.keyword_min_similarity <= self.min_similarity <= 1:
            raise ValueError("docsearch: need top_k >= 1 and 0 < keyword_min_similarity <= min_similarity <= 1")


def departments_of(profile: dict[str, Any]) -> list[str]:
    """The user's department ids from the profile snapshot (DingTalk dept ids, as strings)."""
    raw = profile.get("departments") or profile.get("dept_ids") or profile.get("department") or []
    if isinstance(raw, (str, int)):
        raw = str(raw).split(",")
    return [str(d) for d in raw if str(d).strip()]


def relevant_hits(hits: Sequence[Hit], cfg: DocSearchConfig) -> list[Hit]:
    """The hits worth showing; empty when even the best one is not about the question."""

    def answers(hit: Hit) -> bool:
        sim = hit.similarity or 0.0
        return sim >= cfg.min_similarity or (hit.keyword_rank is not None and sim >= cfg.keyword_min_similarity)

    return [h for h in hits if answers(h)][: cfg.top_k]


class DocSearchSkill(AISkillPlugin):
    """文档问答：根据公司上传的制度、手册等文档回答问题，并注明出处，例如“年假有几天？”“出差住宿标准是多少？”
    Document search: answers questions from company documents with their sources, e.g.
    "how many days of annual leave do I get?", "what is the hotel limit on business trips?"
    """

    name = "docsearch"
    intents = ("docsearch.ask",)
    examples = EXAMPLES
    label = {"zh": "文档问答", "en": "Document search"}
    Config = DocSearchConfig
    timeout_seconds = 40.0

    def __init__(
        self,
        config: DocSearchConfig | None = None,
        *,
        store: SearchStore | None = None,
        embedder: Embedder | None = None,
        writer: AnswerWriter | None = None,
    ) -> None:
        super().__init__(config)
        self._store = store
        self._embedder = embedder
        self._writer = writer
        self._lock = threading.Lock()

    @property
    def cfg(self) -> DocSearchConfig:
        assert isinstance(self.config, DocSearchConfig)
        return self.config

    @property
    def store(self) -> SearchStore:
        with self._lock:
            if self._store is None:
                url = resolve_database_url(self.cfg.vector_database_url, self.cfg.pgvector_data_dir)
                store = PgVectorStore(url)
                store.ensure_schema()
                self._store = store
            return self._store

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.cfg.embed_threads)
        return self._embedder

    @property
    def writer(self) -> AnswerWriter | None:
        if self._writer is None and self.cfg.llm_base_url:
            self._writer = OpenAIAnswerWriter(
                self.cfg.llm_base_url, self.cfg.llm_api_key, self.cfg.llm_model or "default",
                self.cfg.llm_max_tokens, self.cfg.llm_timeout_seconds,
            )
        return self._writer

    def recipients(self) -> tuple[str, ...]:
        # The vector store gets an embedding computed here, never the text; the LLM gets the text.
        return (f"llm:{endpoint_of(self.cfg.llm_base_url)}",) if self.cfg.llm_base_url else ()

    def execute(self, turn: Turn) -> Reply:
        question = turn.text.strip()
        lang = "zh" if _CJK.search(question) or (not question and turn.locale.startswith("zh")) else "en"
        if not question:
            return Reply(text=self.help_text())
        hits = self._search(question, departments_of(turn.profile), lang)
        found = relevant_hits(hits, self.cfg)
        if not found:
            nothing = "文档中没有找到相关内容。" if lang == "zh" else "I found nothing about that in the documents."
            return Reply(text=nothing, meta={"citations": []})
        meta: dict[str, Any] = {"citations": citations(found)}
        writer = self.writer
        if writer is not None:
            answer = self._write(writer, question, found, lang)
            if answer is not None:
                meta["answered_by"] = "llm"
                return Reply(text=f"{answer}\n\n{sources_block(found, lang)}", kind="markdown",
                             title="文档问答" if lang == "zh" else "Document answer", meta=meta)
            meta["llm_failed"] = True
        meta["answered_by"] = "passages"
        return Reply(text=passages_markdown(found, lang), kind="markdown",
                     title="文档问答" if lang == "zh" else "Document answer", meta=meta)

    def _search(self, question: str, departments: list[str], lang: str) -> list[Hit]:
        try:
            vector = self.embedder.embed_query(question)
            return self.store.search(vector, question, departments, k=max(self.cfg.top_k * 2, 6))
        except Exception as exc:  # any backend failure: the user gets one sentence, the log the cause
            polite = ("文档检索暂时不可用，请稍后再试。" if lang == "zh"
                      else "Document search is unavailable right now; please try again later.")
            raise SkillError(f"document search failed: {exc!r}", polite) from exc

    @staticmethod
    def _write(writer: Callable[[list[dict[str, str]]], str], question: str, hits: list[Hit], lang: str) -> str | None:
        try:
            return writer(build_messages(question, hits, lang))
        except Exception as exc:  # the passages still answer; an LLM outage must not hide them
            log.warning("docsearch: LLM answer failed, returning passages: %r", exc)
            return None
