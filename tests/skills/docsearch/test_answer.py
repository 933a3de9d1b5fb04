"""Answers: grounded prompt, citations, relevance cut, passages without an LLM, fallback when it fails."""

from __future__ import annotations

from typing import Any

import numpy as np
import openai
import pytest

from skills.api import SkillError, Turn
from skills.docsearch.answer import OpenAIAnswerWriter, build_messages, citation, passages_markdown
from skills.docsearch.examples import EXAMPLES
from skills.docsearch.skill import DocSearchConfig, DocSearchSkill, departments_of, relevant_hits
from skills.docsearch.store import Hit
from testkit.personas import alice

LEAVE = Hit(1, "handbook", "员工手册", "handbook.md", "员工手册 > 年假", "员工每年享有十五天带薪年假。", 0.03, 0.91, 1)
PARKING = Hit(2, "handbook", "Employee handbook", "h.md", "Parking", "Permits at the front desk.", 0.016, 0.86, None)
TRAVEL = Hit(3, "finance", "报销制度", "f.md", "差旅", "住宿每晚不超过500元。", 0.016, 0.84, 2)


class FixedStore:
    """Returns given hits and records the departments it was asked with (the ACL itself is SQL-tested)."""

    def __init__(self, hits: list[Hit], fail: bool = False) -> None:
        self.hits, self.fail = hits, fail
        self.asked: list[Any] = []

    def search(self, query_vector: Any, query_text: str, departments: Any, k: int = 5) -> list[Hit]:
        if self.fail:
            raise ConnectionError("vector database down")
        self.asked.append(list(departments))
        return self.hits


class FixedEmbedder:
    dim = 3

    def embed_query(self, text: str) -> np.ndarray:
        return np.ones(3, dtype=np.float32)

    def embed_passages(self, texts: Any) -> np.ndarray:
        return np.ones((len(texts), 3), dtype=np.float32)


def turn(text: str, **kw: Any) -> Turn:
    return alice.turn(text, **kw)


def test_the_prompt_holds_only_the_retrieved_excerpts_and_the_rule_to_stay_within_them() -> None:
    messages = build_messages("年假有几天？", [LEAVE, TRAVEL], "zh")
    assert messages[0]["role"] == "system" and "只根据" in messages[0]["content"]
    user = messages[1]["content"]
    assert "[1] 《员工手册》 › 员工手册 > 年假\n员工每年享有十五天带薪年假。" in user
    assert "[2] 《报销制度》 › 差旅" in user
    assert user.endswith("问题: 年假有几天？")
    english = build_messages("How many days?", [LEAVE], "en")
    assert "ONLY from the numbered excerpts" in english[0]["content"]


def test_passages_are_quoted_under_their_citations() -> None:
    text = passages_markdown([LEAVE, PARKING], "en")
    assert "**[1] 《员工手册》 › 员工手册 > 年假**" in text and "> 员工每年享有十五天带薪年假。" in text
    assert citation(PARKING) == "《Employee handbook》 › Parking"


def test_only_hits_with_keywords_or_a_very_close_vector_count_as_answers() -> None:
    cfg = DocSearchConfig(min_similarity=0.89, keyword_min_similarity=0.80)
    assert relevant_hits([LEAVE, PARKING, TRAVEL], cfg) == [LEAVE, TRAVEL]
    assert relevant_hits([PARKING], cfg) == []


def test_departments_come_from_the_profile_snapshot() -> None:
    assert departments_of({"departments": [101, "202"]}) == ["101", "202"]
    assert departments_of({"dept_ids": 7}) == ["7"]
    assert departments_of({"department": "101,202"}) == ["101", "202"]  # the spine's UserProfile field
    assert departments_of({}) == []


def test_without_an_llm_the_skill_returns_the_best_passages_with_citations() -> None:
    store = FixedStore([LEAVE, PARKING])
    skill = DocSearchSkill(DocSearchConfig(llm_base_url=""), store=store, embedder=FixedEmbedder())
    reply = skill.execute(turn("年假有几天", profile={"departments": ["hr"]}))
    assert reply.kind == "markdown" and "员工每年享有十五天带薪年假" in reply.text
    assert reply.meta["answered_by"] == "passages"
    assert reply.meta["citations"] == [
        {"title": "员工手册", "section": "员工手册 > 年假", "collection": "handbook", "filename": "handbook.md"}]
    assert store.asked == [["hr"]]


def test_with_nothing_relevant_it_says_so_instead_of_showing_noise() -> None:
    skill = DocSearchSkill(DocSearchConfig(llm_base_url=""), store=FixedStore([PARKING]), embedder=FixedEmbedder())
    assert "没有找到" in skill.execute(turn("年假有几天")).text
    assert "nothing" in skill.execute(turn("how long is parental leave")).text


def test_an_llm_writes_the_answer_from_the_chunks_and_the_sources_follow(llm_stub: Any) -> None:
    cfg = DocSearchConfig(llm_base_url=llm_stub.base_url, llm_model="stub-7b", llm_api_key="k")
    skill = DocSearchSkill(cfg, store=FixedStore([LEAVE]), embedder=FixedEmbedder())
    reply = skill.execute(turn("年假有几天"))
    assert reply.text.startswith("年假为十五天 [1]。")
    assert "**来源**\n[1] 《员工手册》 › 员工手册 > 年假" in reply.text
    assert reply.meta["answered_by"] == "llm"
    sent = llm_stub.requests[0]
    assert sent["model"] == "stub-7b"
    assert "员工每年享有十五天带薪年假。" in sent["messages"][1]["content"]


def test_when_the_llm_fails_the_passages_still_answer(llm_stub: Any) -> None:
    llm_stub.status = 500
    cfg = DocSearchConfig(llm_base_url=llm_stub.base_url, llm_model="stub")
    skill = DocSearchSkill(cfg, store=FixedStore([LEAVE]), embedder=FixedEmbedder())
    reply = skill.execute(turn("年假有几天"))
    assert reply.meta["answered_by"] == "passages" and reply.meta["llm_failed"] is True
    assert "员工每年享有十五天带薪年假" in reply.text


def test_an_unreachable_llm_is_a_failure_too() -> None:
    from testkit.services import free_port

    writer = OpenAIAnswerWriter(f"http://127.0.0.1:{free_port()}/v1", "", "m", timeout_seconds=2)
    with pytest.raises(openai.APIConnectionError):
        writer([{"role": "user", "content": "hi"}])


def test_a_vector_store_outage_is_a_polite_skill_error() -> None:
    skill = DocSearchSkill(DocSearchConfig(), store=FixedStore([], fail=True), embedder=FixedEmbedder())
    with pytest.raises(SkillError) as raised:
        skill.execute(turn("how long is parental leave"))
    assert "unavailable" in raised.value.user_message


def test_there_are_twenty_examples_per_language() -> None:
    texts = EXAMPLES["docsearch.ask"]
    assert len([t for t in texts if not t.isascii()]) >= 20
    assert len([t for t in texts if t.isascii()]) >= 20
