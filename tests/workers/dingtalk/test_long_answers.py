"""Long answers: split within DingTalk's size, markdown tables and fences render in every part, cards keep buttons."""

from __future__ import annotations

from skills.api import Reply
from workers.dingtalk.reply_split import split_text
from workers.stages.postprocess import reply_parts

TABLE = "intro\n\n| name | value |\n|---|---|\n" + "\n".join(f"| row {i} | {i * 7} |" for i in range(80)) + "\n\nend"


def test_a_table_cut_in_two_repeats_its_header_in_the_next_part():
    parts = split_text(TABLE, 300, markdown=True)
    assert len(parts) > 2
    for part in parts[1:]:
        if "| row" in part:
            assert part.startswith("| name | value |\n|---|---|\n"), part[:60]
    assert all(len(p.encode()) <= 300 for p in parts)
    rows = [line for p in parts for line in p.splitlines() if line.startswith("| row")]
    assert rows == [f"| row {i} | {i * 7} |" for i in range(80)]  # nothing lost, nothing doubled


def test_text_after_a_table_does_not_get_a_stray_header():
    text = "| a | b |\n|---|---|\n" + "\n".join(f"| {i} | {i} |" for i in range(10)) + "\n" + "\n".join(
        f"paragraph line {i}" for i in range(40))
    parts = split_text(text, 200, markdown=True)
    assert len(parts) > 2
    for part in parts:
        lines = part.splitlines()
        if "| a | b |" in lines:
            assert any(line[2:3].isdigit() for line in lines if line.startswith("| ")), part
        else:
            assert not any(line.startswith("|") for line in lines), part


def test_plain_text_is_never_given_markdown_repairs():
    text = "\n".join(["| not | a table |", "|---|---|"] + ["| x | y |"] * 50)
    parts = split_text(text, 100)
    assert "\n".join(parts) == text
    assert sum(p.count("|---|---|") for p in parts) == 1


def test_a_long_action_card_keeps_its_buttons_on_the_last_part():
    buttons = [{"title": "OK", "action": "a"}]
    parts = reply_parts(Reply(text="\n".join(["line of text"] * 200), kind="action_card", buttons=buttons), [], 500)
    assert len(parts) > 1
    assert [p.kind for p in parts[:-1]] == ["markdown"] * (len(parts) - 1)
    assert parts[-1].kind == "action_card" and parts[-1].buttons == buttons
    assert all(p.buttons == [] for p in parts[:-1])
