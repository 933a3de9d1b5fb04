"""run_skill: the routed skill answers, and a failing skill becomes a polite apology."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from skills import registry
from skills.api import AISkillPlugin, Reply, SkillError, Turn
from testkit.personas import TENANT, alice
from workers import phrases
from workers.payload import StagePayload
from workers.resources import current as resources_now
from workers.stages import run_skill

# run_skill reads the tenant's skill settings (database, version key in Redis).
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settings(worker_settings):
    yield


def payload(text: str, skill: str = "echo", reply: dict | None = None) -> StagePayload:
    """A payload as preprocess hands it on (read from its wire dict, the way a task reads it)."""
    turn = alice.turn(text, msg_id="m1", skill=skill)
    return StagePayload.from_dict({"msg_id": "m1", "turn": turn.to_dict(), "reply": reply, "notes": [],
                                   "record": {"preprocessed_at": 1.0}})


def answered(p: StagePayload) -> dict:
    """run_skill's payload as it travels to postprocess (JSON)."""
    return json.loads(json.dumps(run_skill.run_skill(p).to_dict()))


class Declining(AISkillPlugin):
    name = "declining"

    def execute(self, turn: Turn) -> Reply:
        raise SkillError("no data", user_message="没有找到相关数据。")


class DecliningSilently(AISkillPlugin):
    name = "declining_silently"

    def execute(self, turn: Turn) -> Reply:
        raise SkillError("internal reason")


release = threading.Event()  # the slow skill answers only once the test lets it
answered_late = threading.Event()


class Slow(AISkillPlugin):
    name = "slow"
    timeout_seconds = 0.2

    def execute(self, turn: Turn) -> Reply:
        release.wait(60)
        answered_late.set()
        return Reply(text="too late")


class Crashing(AISkillPlugin):
    name = "crashing"

    def execute(self, turn: Turn) -> Reply:
        raise RuntimeError("boom")


class Streaming(AISkillPlugin):
    name = "streaming"

    def execute(self, turn: Turn) -> Iterator[str]:
        yield "a"
        yield "b"

    def post_process(self, turn: Turn, result: Reply) -> Reply:
        return Reply(text=result.text + "!")


@pytest.fixture
def test_skills(monkeypatch):
    for cls in (Declining, DecliningSilently, Slow, Crashing, Streaming):
        monkeypatch.setitem(registry.SKILLS, cls.name, f"{__name__}:{cls.__name__}")
    release.clear()
    answered_late.clear()
    yield
    release.set()
    registry.skill_class.cache_clear()


def test_echo_repeats_english_text():
    out = answered(payload("hello"))
    assert out["reply"]["text"] == "You said: hello"
    assert out["outcome"] == "ok"
    assert out["record"]["skill_done_at"] >= out["record"]["preprocessed_at"]


def test_echo_answers_chinese_in_chinese():
    assert answered(payload("你好"))["reply"]["text"] == "你说：你好"


def test_help_lists_every_skill_the_tenant_can_use_with_its_help():
    reply = answered(payload("help", skill="help"))["reply"]
    assert reply["kind"] == "markdown"
    usable = resources_now().skill_settings.enabled_skills(TENANT)
    for name in registry.skill_names():
        assert (f"**{name}**" in reply["text"]) == (name in usable), name
    assert "repeats your message" in reply["text"]


def test_help_does_not_advertise_a_skill_the_tenant_disabled():
    from webapp.actions import versions
    from webapp.actions.skills import do_update_skill_setting

    do_update_skill_setting("ops", TENANT, "docsearch", False, {})
    versions.publish(versions.SETTINGS)
    resources_now().skill_settings.invalidate()
    text = answered(payload("help", skill="help"))["reply"]["text"]
    assert "**docsearch**" not in text
    assert "**schedule**" in text and "**echo**" in text


def test_a_preset_reply_passes_through_without_a_skill():
    out = answered(payload("", skill="", reply={"text": phrases.EMPTY_TEXT}))
    assert out["reply"]["text"] == phrases.EMPTY_TEXT
    assert out["outcome"] == "preset"


def test_a_skill_error_shows_the_skills_user_message(test_skills):
    out = answered(payload("查一下", skill="declining"))
    assert out["reply"]["text"] == "没有找到相关数据。"
    assert out["outcome"] == "skill_error"


def test_it_apologises_when_a_skill_declines_without_a_message(test_skills):
    out = answered(payload("please", skill="declining_silently"))
    assert out["reply"]["text"] == phrases.APOLOGY_EN


def test_it_apologises_when_the_skill_times_out(test_skills):
    out = answered(payload("你在吗", skill="slow"))
    assert not answered_late.is_set()  # the apology came while the skill was still busy
    assert out["reply"]["text"] == phrases.APOLOGY_ZH
    assert out["outcome"] == "timeout"


def test_a_crashing_skill_propagates_to_the_task_wrapper(test_skills):
    with pytest.raises(RuntimeError, match="boom"):
        run_skill.run_skill(payload("x", skill="crashing"))


def test_a_stream_of_chunks_becomes_one_reply(test_skills):
    assert answered(payload("x", skill="streaming"))["reply"]["text"] == "ab!"


def test_the_apology_payload_keeps_the_turn_and_delivery():
    p = payload("hello").replace(delivery={"conversation_id": "c"})
    out = run_skill.with_apology(p, "crash")
    assert out.delivery == {"conversation_id": "c"} and out.turn == p.turn
    assert out.reply.text == phrases.APOLOGY_EN
    assert out.outcome == "crash"
