"""Text extraction of txt, md, pdf and docx keeps the headings a citation needs; bad files fail clearly."""

from __future__ import annotations

import pytest

from skills.docsearch.extract import ExtractionError, Section, extract_sections
from tests.skills.docsearch.documents import make_docx, make_pdf


def test_plain_text_in_utf8_and_in_gb18030_reads_the_same() -> None:
    text = "员工每年享有十五天带薪年假。"
    assert extract_sections("a.txt", text.encode("utf-8")) == [Section("", text)]
    assert extract_sections("a.txt", text.encode("gb18030")) == [Section("", text)]
    assert extract_sections("a.txt", "\ufeff".encode() + text.encode()) == [Section("", text)]


def test_markdown_sections_carry_their_heading_path() -> None:
    md = "# 员工手册\n欢迎\n## 年假\n十五天\n```\n# not a heading\n```\nParking\n-------\nAsk the front desk.\n"
    sections = extract_sections("handbook.md", md.encode())
    assert [s.heading for s in sections] == ["员工手册", "员工手册 > 年假", "员工手册 > Parking"]
    assert "# not a heading" in sections[1].text


def test_pdf_pages_become_sections_in_english_and_chinese() -> None:
    pdf = make_pdf([["Travel policy", "Hotels up to 500 CNY per night."], ["报销制度", "发票须在30天内提交。"]])
    sections = extract_sections("policy.pdf", pdf)
    assert [s.heading for s in sections] == ["p. 1", "p. 2"]
    assert "Hotels up to 500 CNY per night." in sections[0].text
    assert "发票须在30天内提交。" in sections[1].text


def test_docx_headings_nest_and_tables_are_read_in_place() -> None:
    data = make_docx([("h1", "员工手册"), ("p", "欢迎加入。"), ("h2", "年假"), ("p", "十五天带薪年假。"),
                      ("table", "类型 | 天数"), ("h2", "Remote work"), ("p", "Two days a week.")])
    sections = extract_sections("handbook.docx", data)
    assert [s.heading for s in sections] == ["员工手册", "员工手册 > 年假", "员工手册 > Remote work"]
    assert sections[1].text == "十五天带薪年假。\n类型 | 天数"


@pytest.mark.parametrize("filename,data,message", [
    ("a.xlsx", b"PK\x03\x04", "unsupported file type"),
    ("a.txt", b"", "empty"),
    ("a.pdf", b"%PDF-1.4 not really", "not a readable PDF"),
    ("a.docx", b"not a zip", "not a readable .docx"),
    ("a.md", b"   \n\n", "no text found"),
])
def test_unreadable_files_fail_with_a_message_for_the_operator(filename: str, data: bytes, message: str) -> None:
    with pytest.raises(ExtractionError, match=message):
        extract_sections(filename, data)


def test_a_pdf_without_a_text_layer_is_reported_as_such() -> None:
    with pytest.raises(ExtractionError, match="no text found"):
        extract_sections("scan.pdf", make_pdf([[]]))
