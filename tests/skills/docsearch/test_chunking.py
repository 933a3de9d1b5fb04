"""Chunking: bounded sizes for Chinese and English, overlap, and never a chunk across two headings."""

from __future__ import annotations

import pytest

from skills.docsearch.chunking import chunk_sections, size
from skills.docsearch.extract import Section
from skills.docsearch.lexical import document_terms, query_terms

ZH = "员工每年享有十五天带薪年假。年假须提前三个工作日在系统中申请。未休年假可顺延至次年三月底。"
EN = "Employees are entitled to fifteen days of paid annual leave. Leave must be requested three days ahead. "


def test_size_counts_chinese_characters_and_english_words() -> None:
    assert size("年假十五天") == 5
    assert size("paid annual leave") == 4  # 3 words x 1.3


def test_chunks_keep_their_section_and_stay_within_the_budget() -> None:
    sections = [Section("手册 > 年假", ZH * 8), Section("Handbook > Leave", EN * 8), Section("", "短。")]
    chunks = chunk_sections(sections, max_units=100, overlap_units=30)
    assert {c.section for c in chunks} == {"手册 > 年假", "Handbook > Leave", ""}
    assert all(size(c.text) <= 100 for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    zh_chunks = [c for c in chunks if c.section == "手册 > 年假"]
    assert len(zh_chunks) >= 3
    # Overlap: each chunk starts with a sentence the previous one ended with.
    first_sentence_of_second = zh_chunks[1].text.split("\n")[0]
    assert first_sentence_of_second in zh_chunks[0].text


def test_a_sentence_longer_than_a_chunk_is_cut_rather_than_dropped() -> None:
    endless = "这是一句没有标点的很长的句子" * 30
    chunks = chunk_sections([Section("x", endless)], max_units=50, overlap_units=10)
    assert "".join(c.text for c in chunks).replace("\n", "") .count("很长的句子") >= 30
    assert all(size(c.text) <= 50 for c in chunks)


def test_overlap_must_be_smaller_than_the_chunk() -> None:
    with pytest.raises(ValueError):
        chunk_sections([Section("", "x")], max_units=10, overlap_units=10)


def test_keyword_terms_use_chinese_bigrams_and_drop_question_words() -> None:
    assert "年假" in document_terms("员工年假制度").cjk.split()
    terms = query_terms("年假有多少天？ How many days?")
    assert "年假" in terms.cjk and "多少" not in terms.cjk
    assert terms.english == "how | many | days"
