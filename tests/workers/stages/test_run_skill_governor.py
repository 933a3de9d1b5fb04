"""run_skill holds an AI-core slot while a governed skill answers, and waits a bounded time for one."""

from __future__ import annotations

import json

import pytest

from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from testkit.clock import FakeClock
from testkit.personas import alice
from workers import governor, phrases
from workers.payload import StagePayload
from workers.stages import run_skill

pytestmark = pytest.mark.django_db

CORE = "http://127.0.0.1:9/v1"
seen: list[int] = []


class Governed(AISkillPlugin):
    name = "governed"
    kind = "io"

    def ai_core(self) -> str:
        return CORE

    def execute(self, turn: Turn) -> Reply:
        seen.append(governor.current().in_use(CORE))
        return Reply(text="answered")


@pytest.fixture
def governed(monkeypatch, resources):
    monkeypatch.setitem(registry.SKILLS, "governed", f"{__name__}:Governed")
    seen.clear()
    clock = FakeClock()
    resources.set(clock=clock, LLM_MAX_CONCURRENCY="1", LLM_SLOT_WAIT_SECONDS="10")  # below the holder's lease
    yield clock
    registry.skill_class.cache_clear()


def payload(msg_id: str = "m1") -> StagePayload:
    turn = alice.turn("你好", msg_id=msg_id, skill="governed")
    return StagePayload.from_dict({"msg_id": msg_id, "turn": turn.to_dict(), "reply": None, "notes": [],
                                   "record": {}})


def test_the_skill_answers_holding_a_slot_and_gives_it_back(governed):
    out = json.loads(json.dumps(run_skill.run_skill(payload()).to_dict()))
    assert out["reply"]["text"] == "answered"
    assert seen == [1]
    assert governor.current().in_use(CORE) == 0


def test_no_slot_within_the_wait_is_a_polite_busy_answer(governed):
    gov = governor.current()
    assert gov.try_acquire(CORE, "someone-else", "other-conversation")[0]
    out = run_skill.run_skill(payload())
    assert out.outcome == "busy"
    assert out.reply is not None and out.reply.text == phrases.slot_timeout("你好", "zh-CN")
    assert seen == []  # the skill never ran
    assert governed.elapsed >= 10


def test_a_skill_without_an_ai_core_takes_no_slot(resources, worker_settings):
    resources.set(LLM_MAX_CONCURRENCY="1")
    gov = governor.current()
    assert gov.try_acquire(CORE, "someone-else", "c")[0]
    turn = alice.turn("hello", msg_id="m2", skill="echo")
    p = StagePayload.from_dict({"msg_id": "m2", "turn": turn.to_dict(), "reply": None, "notes": [], "record": {}})
    assert run_skill.run_skill(p).reply.text == "You said: hello"
