"""The echo skill repeats the user's words in the user's language."""

from __future__ import annotations

from skills.api import Turn
from skills.echo.skill import EchoSkill


def turn(text: str) -> Turn:
    return Turn(msg_id="m", tenant_id="t", conversation_id="c", conversation_type="1", user_id="alice", text=text)


def test_it_repeats_english_text():
    assert EchoSkill().execute(turn("echo: hi")).text == "You said: echo: hi"


def test_it_answers_chinese_in_chinese():
    assert EchoSkill().execute(turn("复读：你好")).text == "你说：复读：你好"
