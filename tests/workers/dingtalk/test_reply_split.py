"""Long replies are split into parts DingTalk accepts, at line boundaries, code fences intact."""

from __future__ import annotations

from workers.dingtalk.reply_split import split_text


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def test_a_short_text_is_one_part():
    assert split_text("hello", 100) == ["hello"]


def test_a_long_text_splits_at_lines_within_the_byte_limit():
    text = "\n".join(f"line {i} " + "x" * 30 for i in range(100))
    parts = split_text(text, 400)
    assert len(parts) > 1
    assert all(size(p) <= 400 for p in parts)
    assert "\n".join(parts) == text


def test_chinese_is_measured_in_utf8_bytes():
    parts = split_text("中" * 1000, 300)
    assert all(size(p) <= 300 for p in parts)
    assert "".join(parts) == "中" * 1000


def test_a_cut_inside_a_code_block_closes_and_reopens_the_fence():
    text = "intro\n```\n" + "\n".join(f"code {i}" for i in range(200)) + "\n```\nend"
    parts = split_text(text, 300, markdown=True)
    assert len(parts) > 2
    for part in parts:
        assert part.count("```") % 2 == 0, part
        assert size(part) <= 300
