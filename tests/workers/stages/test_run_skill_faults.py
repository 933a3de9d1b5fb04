"""A crashing or hanging skill gives the user a polite apology and the worker goes on answering."""

from __future__ import annotations

import threading

import pytest

from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from testkit.personas import alice
from workers import phrases
from workers.tasks import run_skill_task

pytestmark = pytest.mark.django_db

release = threading.Event()
hung_up = threading.Event()  # set when the hanging skill finally returns


class CrashingSkill(AISkillPlugin):
    name = "crashing"
    intents = ("test.crash",)

    def execute(self, turn: Turn) -> Reply:
        raise ZeroDivisionError("a bug in the skill")


class HangingSkill(AISkillPlugin):
    name = "hanging"
    intents = ("test.hang",)
    timeout_seconds = 0.5

    def execute(self, turn: Turn) -> Reply:
        release.wait(60)  # hangs until the test lets it go
        hung_up.set()
        return Reply(text="far too late")


@pytest.fixture(autouse=True)
def faulty_skills(monkeypatch, worker_settings):
    monkeypatch.setitem(registry.SKILLS, "crashing", f"{__name__}:CrashingSkill")
    monkeypatch.setitem(registry.SKILLS, "hanging", f"{__name__}:HangingSkill")
    release.clear()
    hung_up.clear()
    yield
    release.set()
    registry.skill_class.cache_clear()


def payload(skill: str, text: str, msg_id: str) -> dict:
    turn = alice.turn(text, msg_id=msg_id, skill=skill)
    return {"msg_id": msg_id, "turn": turn.to_dict(), "reply": None, "notes": [], "record": {}}


def test_it_apologises_when_the_skill_crashes_and_answers_the_next_message():
    out = run_skill_task.apply(args=(payload("crashing", "查一下", "m1"),)).get()
    assert (out["outcome"], out["reply"]["text"]) == ("crash", phrases.APOLOGY_ZH)
    nxt = run_skill_task.apply(args=(payload("echo", "hello", "m2"),)).get()
    assert nxt["reply"]["text"] == "You said: hello"


def test_it_apologises_when_the_skill_hangs_and_does_not_wait_for_it():
    out = run_skill_task.apply(args=(payload("hanging", "are you there", "m3"),)).get()
    assert (out["outcome"], out["reply"]["text"]) == ("timeout", phrases.APOLOGY_EN)
    # The abandoned thread still hangs (only the test releases it); the next message is answered
    # meanwhile, so nothing waits for it.
    nxt = run_skill_task.apply(args=(payload("echo", "你好", "m4"),)).get()
    assert nxt["reply"]["text"] == "你说：你好"
    assert not hung_up.is_set()
