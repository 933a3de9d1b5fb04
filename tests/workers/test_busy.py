"""The busy notice against the DingTalk sandbox: sent once per msgId, only when the predicted wait for
an AI answer slot exceeds BUSY_NOTICE_SECONDS, in the user's language."""

from __future__ import annotations

import pytest

from testkit.envelopes import envelope_from_push
from testkit.personas import alice
from workers import busy, governor
from workers.payload import StagePayload
from workers.stages.preprocess import preprocess

pytestmark = pytest.mark.django_db

CORE = "http://127.0.0.1:9/v1"


@pytest.fixture
def llm(resources, sandbox_settings):
    resources.set(LLM_BASE_URL=CORE, LLM_MAX_CONCURRENCY="2", BUSY_NOTICE_SECONDS="5")
    return governor.current()


def routed(server, client, text: str) -> StagePayload:
    injected = alice.send(client, text)
    p = preprocess(envelope_from_push(server, injected["messageId"]), run_id=f"run-{injected['msgId']}")
    return p.replace(turn=p.turn.replace(skill="llm_chat"))


def fill(gov: governor.Governor, ahead: int, hold_seconds: float) -> None:
    """Both slots busy, `ahead` messages already waiting, answers taking `hold_seconds`."""
    gov.redis.set(gov.keys(CORE)["hold"], str(hold_seconds))
    for i in range(2):
        assert gov.try_acquire(CORE, f"busy-{i}", f"c{i}")[0]
    for i in range(ahead):
        gov.enqueue(CORE, f"earlier-{i}")


def test_a_long_wait_gets_one_notice_in_the_users_language(dingtalk_sandbox, sandbox_client, llm):
    fill(llm, ahead=3, hold_seconds=4.0)  # 3 ahead + 2 answering, 2 at a time, 4 s each: ~8 s
    p = routed(dingtalk_sandbox, sandbox_client, "帮我写一封请假邮件")
    standing = busy.check(p)
    assert standing is not None and standing.ahead == 3 and standing.wait_seconds > 5
    [notice] = sandbox_client.replies()
    assert notice["text"] == "排队中，前面还有 3 条，请稍候。"
    assert notice["msg_id"] == p.msg_id
    # A retry of preprocess (or a redelivered copy) predicts the same wait, but says nothing more.
    assert busy.check(p) is not None
    assert len(sandbox_client.replies()) == 1


def test_english_users_read_it_in_english(dingtalk_sandbox, sandbox_client, llm):
    fill(llm, ahead=4, hold_seconds=4.0)
    busy.check(routed(dingtalk_sandbox, sandbox_client, "Could you draft a leave request for me?"))
    [notice] = sandbox_client.replies()
    assert notice["text"] == "Busy right now: 4 ahead of you, please hold on."


def test_a_wait_within_the_budget_sends_nothing(dingtalk_sandbox, sandbox_client, llm):
    fill(llm, ahead=1, hold_seconds=2.0)  # 1 ahead + 2 answering: ~2 s
    standing = busy.check(routed(dingtalk_sandbox, sandbox_client, "你好"))
    assert standing is not None and 0 < standing.wait_seconds <= 5
    assert sandbox_client.replies() == []


def test_a_skill_without_an_ai_core_is_not_counted(dingtalk_sandbox, sandbox_client, llm):
    fill(llm, ahead=10, hold_seconds=10.0)
    p = routed(dingtalk_sandbox, sandbox_client, "hello")
    assert busy.check(p.replace(turn=p.turn.replace(skill="echo"))) is None
    assert sandbox_client.replies() == []


def test_no_budget_for_a_notice_skips_it_and_the_message_goes_on(dingtalk_sandbox, sandbox_client, llm, resources):
    resources.set(DINGTALK_QPS_WEBHOOK="0.001", DINGTALK_QPS_ROBOT_SEND="0.001")
    gov = governor.current()
    fill(gov, ahead=5, hold_seconds=5.0)
    p = routed(dingtalk_sandbox, sandbox_client, "你好")
    res_budget = resources.current.rate_budget
    res_budget.acquire("webhook", timeout=0.1)  # the one token there is: spent
    assert busy.check(p) is not None
    assert sandbox_client.replies() == []
