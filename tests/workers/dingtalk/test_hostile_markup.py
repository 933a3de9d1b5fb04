"""Hostile markup in replies and cards: HTML and markdown escaped in card values, unsafe links and buttons refused."""

from __future__ import annotations

import json

import pytest

from skills.api import Reply
from workers.dingtalk.card_text import card_value, fit_card, safe_url, sanitize_markdown
from workers.dingtalk.outbound import action_buttons, openapi_message, webhook_body


@pytest.mark.parametrize(("url", "ok"), [
    ("https://oa.example.com/leave?id=1", True), ("http://intranet.example/x", True),
    ("dtmd://dingtalkclient/sendMessage?content=%E7%A1%AE%E8%AE%A4", True),
    ("dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fx", True),
    ("javascript:alert(1)", False), ("JaVaScRiPt:alert(1)", False), ("data:text/html,<script>", False),
    ("file:///etc/passwd", False), ("vbscript:msgbox", False), ("https://", False), ("", False),
    ("https://ok.example/\nSet-Cookie: x", False), ("//evil.example/x", False), ("ftp://files.example/", False),
])
def test_only_web_and_dingtalk_links_are_safe(url, ok):
    assert safe_url(url) is ok


def test_a_card_value_is_shown_as_typed():
    value = '<img src=x onerror=alert(1)> [点我](javascript:alert(1)) **粗** `code`'
    out = card_value(value)
    assert "<img" not in out and "&lt;img" in out
    assert "[点我](" not in out and "\\[点我\\]" in out and "\\*\\*粗\\*\\*" in out
    assert card_value("2026-12-04 15:00 会议（3 楼）") == "2026-12-04 15:00 会议（3 楼）"  # ordinary text untouched
    assert card_value("https://oa.example/a_b?x=[1]") == "https://oa.example/a_b?x=[1]"  # a link value: kept
    assert card_value("javascript:alert(1)") == "" and card_value(" JAVASCRIPT:x ") == ""


def test_markdown_keeps_safe_links_and_loses_html_and_unsafe_links():
    text = ("## 结果\n[手册](https://hr.example/handbook) <script>alert(1)</script> "
            "[点我](javascript:alert(document.cookie)) ![x](file:///etc/passwd) javascript:void(0)")
    out = sanitize_markdown(text)
    assert "[手册](https://hr.example/handbook)" in out and out.startswith("## 结果")
    assert "<script>" not in out and "&lt;script>" in out
    assert "javascript:" not in out.lower() and "file://" not in out and "点我" in out
    assert sanitize_markdown(out) == out  # idempotent (cards are re-rendered while streaming)


def test_an_ai_card_shows_the_answer_defused():
    content, overflow = fit_card("答案 <iframe src=https://evil/> [x](javascript:alert(1))", 1000)
    assert "<iframe" not in content and "javascript:" not in content and not overflow


def test_buttons_with_unsafe_links_are_dropped_and_markdown_bodies_sanitized():
    reply = Reply(text="选一个 <b onclick=x>", kind="action_card", buttons=[
        {"title": "打开", "url": "https://oa.example/x"},
        {"title": "坏", "url": "javascript:alert(1)"},
        {"title": "也坏", "url": "file:///c:/windows"},
        {"title": "确认", "action": "confirm", "params": {}},
    ])
    body = webhook_body(reply)
    card = body["actionCard"]
    assert [b["title"] for b in card["btns"]] == ["打开", "确认"]
    assert "javascript" not in json.dumps(body) and "<b" not in card["text"]
    key, param = openapi_message(reply)
    assert key == "sampleActionCard2" and "javascript" not in param and "file:" not in param
    assert [b["title"] for b in action_buttons(reply)] == ["确认"]
    only_bad = Reply(text="x", kind="action_card", buttons=[{"title": "坏", "url": "javascript:1"}])
    assert webhook_body(only_bad)["msgtype"] == "markdown"  # no button left: a markdown reply
