"""An unsure router asks which skill was meant; tapping a button runs that skill on the original text."""

from __future__ import annotations

import pytest

from skills.routing.router import Prediction
from testkit.envelopes import envelope_from_push
from testkit.personas import alice
from tests.workers.routing.test_routers import embedding_router
from webapp.models import RoutedTurn
from workers.payload import StagePayload
from workers.stages.deliver import deliver
from workers.stages.postprocess import postprocess
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill

pytestmark = pytest.mark.django_db

UNSURE = Prediction("docsearch.ask", 0.45, False, [("docsearch.ask", 0.45), ("schedule.list", 0.4), ("echo", 0.15)])


@pytest.fixture
def unsure_router(resources):
    resources.current.router = embedding_router(UNSURE)


def through_preprocess(server, client, text: str) -> StagePayload:
    injected = alice.send(client, text)
    return preprocess(envelope_from_push(server, injected["messageId"]), run_id=f"run-{injected['msgId']}")


def test_the_question_goes_out_as_a_card_and_a_tap_runs_the_chosen_skill(
        dingtalk_sandbox, sandbox_client, sandbox_settings, unsure_router):
    asked = through_preprocess(dingtalk_sandbox, sandbox_client, "培训资料")
    assert asked.reply.kind == "action_card"
    assert deliver(postprocess(run_skill(asked)))["result"] == "sent"
    [card] = sandbox_client.replies()
    titles = [b["title"] for b in card["body"]["actionCard"]["btns"]]
    assert titles == ["文档问答", "日程提醒", "复读"]

    tapped = through_preprocess(dingtalk_sandbox, sandbox_client, "日程提醒")
    turn = tapped.turn
    assert (turn.skill, turn.intent, turn.text) == ("schedule", "schedule.list", "培训资料")
    assert tapped.reply is None
    assert RoutedTurn.objects.get(msg_id=tapped.msg_id).decision == "chosen"
