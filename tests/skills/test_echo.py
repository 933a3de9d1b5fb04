"""The echo skill repeats the user's words in the user's language."""

from __future__ import annotations

from skills.api import Turn
from skills.echo.skill import EchoSkill
from testkit.personas import alice


def turn(text: str) -> Turn:
    return alice.turn(text)


def test_it_repeats_english_text():
    assert EchoSkill().execute(turn("echo: hi")).text == "You said: echo: hi"


def test_it_answers_chinese_in_chinese():
    assert EchoSkill().execute(turn("复读：你好")).text == "你说：复读：你好"
