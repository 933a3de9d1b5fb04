"""Which skills queue run_skill goes to: the routed skill's declared kind, steered in preprocess."""

from __future__ import annotations

import pytest

from contract.pipeline import POSTPROCESS, RUN_SKILL, SKILLS_CPU_QUEUE, SKILLS_IO_QUEUE, chain_field
from skills import registry
from skills.api import AISkillPlugin
from testkit.personas import alice
from workers.payload import StagePayload
from workers.skill_queues import queue_for, steer


def payload(skill: str, reply: dict | None = None) -> StagePayload:
    turn = alice.turn("hello", msg_id="m1", skill=skill)
    return StagePayload.from_dict({"msg_id": "m1", "turn": turn.to_dict(), "reply": reply, "notes": [], "record": {}})


@pytest.mark.parametrize(("skill", "queue"), [
    ("llm_chat", SKILLS_IO_QUEUE), ("echo", SKILLS_IO_QUEUE), ("help", SKILLS_IO_QUEUE),
    ("docsearch", SKILLS_CPU_QUEUE), ("schedule", SKILLS_CPU_QUEUE),
    ("hr-remote", SKILLS_IO_QUEUE),  # not built in: a remote skill (an HTTP call)
    ("", SKILLS_IO_QUEUE),  # no skill: the fallback (echo)
])
def test_the_skills_kind_picks_its_queue(skill, queue):
    assert queue_for(payload(skill)) == queue


def test_a_preset_reply_goes_to_the_io_queue():
    assert queue_for(payload("docsearch", reply={"text": "请输入文字内容。"})) == SKILLS_IO_QUEUE


def test_every_built_in_skill_declares_a_known_kind():
    for name in registry.skill_names():
        assert registry.skill_class(name).kind in ("cpu", "io"), name
    assert AISkillPlugin.kind == "cpu"  # bounded by the cores unless a skill says it waits


def test_steer_points_the_next_step_of_the_listeners_chain_at_the_skills_queue():
    chain = chain_field("preprocess")  # what the listener publishes: next step last
    assert chain[-1]["task"] == RUN_SKILL.task and chain[-1]["options"]["queue"] == SKILLS_CPU_QUEUE
    assert steer(chain, payload("llm_chat")) == SKILLS_IO_QUEUE
    assert chain[-1]["options"]["queue"] == SKILLS_IO_QUEUE
    assert [s["options"]["queue"] for s in chain[:-1]] == ["dtbot.deliver", POSTPROCESS.queue]


def test_steer_leaves_other_chains_alone():
    assert steer(None, payload("llm_chat")) is None
    assert steer([], payload("llm_chat")) is None
    chain = chain_field("run_skill")  # the next step is postprocess
    before = [dict(s["options"]) for s in chain]
    assert steer(chain, payload("llm_chat")) is None
    assert [s["options"] for s in chain] == before
