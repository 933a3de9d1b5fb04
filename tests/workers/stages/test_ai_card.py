"""run_skill streams a skill's answer into an AI card; postprocess and deliver then send only the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from conf.settings import get_settings
from sandbox.llm import STUB_MARK
from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from testkit.envelopes import envelope_from_push
from testkit.personas import Persona, alice, bob
from testkit.waits import wait_for
from webapp.models import MessageRecord, MessageStatus
from workers.dingtalk.card_streamer import out_track_id_for
from workers.payload import StagePayload
from workers.stages import ai_card
from workers.stages.deliver import deliver
from workers.stages.postprocess import postprocess
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill
from workers.state import session

pytestmark = pytest.mark.django_db

TEMPLATE = "test-ai-card.schema"


class Hanging(AISkillPlugin):
    """Streams one chunk, then never another."""

    name = "hanging"
    intents = ("hanging.test",)
    streams = True
    timeout_seconds = 1.0

    def execute(self, turn: Turn) -> Iterator[str]:
        def chunks() -> Iterator[str]:
            yield "thinking hard"
            threading.Event().wait(30)
            yield "never"

        return chunks()


class Plain(AISkillPlugin):
    """A streaming skill that answers with a whole Reply this time."""

    name = "plain"
    intents = ("plain.test",)
    streams = True

    def execute(self, turn: Turn) -> Reply:
        return Reply(text="no stream today")


@pytest.fixture
def card_settings(sandbox_settings, stub, monkeypatch, resources):
    """Sandbox DingTalk with an AI card template, the stub as the LLM, fresh skill instances."""
    resources.set(DINGTALK_AI_CARD_TEMPLATE_ID=TEMPLATE, LLM_BASE_URL=stub.base_url, LLM_MODEL="stub-llm",
                  LLM_READ_TIMEOUT_SECONDS="1")
    for cls in (Hanging, Plain):
        monkeypatch.setitem(registry.SKILLS, cls.name, f"{__name__}:{cls.__name__}")
    yield get_settings()
    registry.skill_class.cache_clear()


def to_skill(server, client, text: str, skill: str = "llm_chat", who: Persona = alice, **message) -> StagePayload:
    injected = who.send(client, text, **message)
    payload = preprocess(envelope_from_push(server, injected["messageId"]), run_id=f"run-{injected['msgId']}")
    return payload.replace(turn=payload.turn.replace(skill=skill))


def test_an_llm_answer_streams_into_a_finalized_card_and_deliver_sends_nothing_more(
        dingtalk_sandbox, sandbox_client, card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "what is a card?")
    out = run_skill(payload)
    reply = out.reply
    assert reply.kind == "ai_card"
    assert reply.card["delivered"] is True
    assert reply.card["out_track_id"] == out_track_id_for(payload.msg_id)
    assert reply.text.startswith(STUB_MARK)
    card = sandbox_client.card(reply.card["out_track_id"])
    assert card["status"] == "finished"
    assert card["cardTemplateId"] == TEMPLATE
    assert card["streams"]["content"] == reply.text
    finals = [u for u in card["updates"] if u["kind"] == "streaming" and u["isFinalize"]]
    assert len(finals) == 1 and not finals[0]["isError"]

    after = postprocess(out)
    assert after.replies == ()
    history = session.load_history(out.turn.tenant_id, out.turn.conversation_id, alice.user_id)
    assert (history[-1]["role"], history[-1]["text"]) == ("assistant", reply.text)
    result = deliver(after)
    assert result["channel"] == "card" and result["card"] == reply.card["out_track_id"]
    [only] = sandbox_client.replies()  # the card itself: no second message
    assert only["via"] == "card" and only["user_ids"] == [alice.staff_id]
    record = MessageRecord.objects.get(msg_id=payload.msg_id)
    assert record.status == MessageStatus.REPLIED and record.channel == "card"
    assert record.replied_at is not None


def test_in_a_group_the_card_goes_to_the_group_conversation(dingtalk_sandbox, sandbox_client, card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "hello group", conversation_type="2", who=bob)
    run_skill(payload)
    [card_reply] = sandbox_client.replies(via="card")
    assert card_reply["conversation_type"] == "2"
    assert card_reply["conversation_id"] == payload.turn.conversation_id


def test_what_does_not_fit_on_the_card_follows_as_markdown(dingtalk_sandbox, sandbox_client, stub, card_settings):
    stub.configure(answer="word " * 400)  # ~2 KB: the card holds 1 KB
    payload = to_skill(dingtalk_sandbox, sandbox_client, "tell me everything")
    out = run_skill(payload)
    overflow = out.reply.card["overflow"]
    assert overflow
    after = postprocess(out)
    assert [p.kind for p in after.replies] == ["markdown"]
    assert after.replies[0].text.strip() == overflow.strip()
    deliver(after)
    replies = sandbox_client.replies()
    assert [r["via"] for r in replies] == ["card", "webhook"]
    card_text = sandbox_client.card(out.reply.card["out_track_id"])["streams"]["content"]
    assert card_text.split("…")[0].strip() + " " + overflow.strip() == out.reply.text.strip()


def test_without_a_template_the_answer_is_one_markdown_reply(dingtalk_sandbox, sandbox_client, card_settings,
                                                             resources):
    resources.set(DINGTALK_AI_CARD_TEMPLATE_ID="")
    payload = to_skill(dingtalk_sandbox, sandbox_client, "plain please")
    out = run_skill(payload)
    assert out.reply.kind == "markdown"
    assert out.reply.text.startswith(STUB_MARK)
    deliver(postprocess(out))
    [reply] = sandbox_client.replies()
    assert reply["via"] == "webhook" and reply["msgtype"] == "markdown"
    assert sandbox_client.cards() == []


def test_when_the_card_cannot_be_created_the_whole_answer_goes_as_markdown(
        dingtalk_sandbox, sandbox_client, card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "who am i", conversation_type="2", who=bob)
    payload.delivery["robot_code"] = "another-robot"  # createAndDeliver refuses a foreign robot code
    out = run_skill(payload)
    assert out.reply.kind == "markdown"
    assert out.reply.text.startswith(STUB_MARK)
    assert out.outcome == "ok"
    assert sandbox_client.cards() == []
    deliver(postprocess(out))
    [reply] = sandbox_client.replies()
    assert reply["via"] == "webhook" and reply["body"]["markdown"]["text"].startswith(out.reply.text)


@pytest.mark.parametrize("fault, polite", [
    ({"error_status": 500}, "unavailable"),
    ({"error_status": 429}, "busy"),
    ({"cut_after": 3}, "dropped"),
    ({"first_token_delay": 3.0}, "took too long"),
])
def test_an_llm_fault_ends_on_a_finalized_error_card_with_a_polite_message(
        dingtalk_sandbox, sandbox_client, stub, card_settings, fault, polite):
    stub.configure(**fault)
    payload = to_skill(dingtalk_sandbox, sandbox_client, "please answer")
    payload = payload.replace(turn=payload.turn.replace(locale="en-US"))
    out = run_skill(payload)  # the first token would come after 3 s: the 1 s read timeout fires first
    assert out.outcome == "skill_error"
    assert polite in out.reply.text
    card = sandbox_client.card(out_track_id_for(payload.msg_id))
    assert card["status"] == "failed"
    assert polite in card["streams"]["content"]
    assert postprocess(out).replies == ()


def test_a_refused_connection_also_ends_on_an_error_card(dingtalk_sandbox, sandbox_client, card_settings, resources):
    from testkit.services import free_port

    resources.set(LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    payload = to_skill(dingtalk_sandbox, sandbox_client, "anyone there?")
    payload = payload.replace(turn=payload.turn.replace(locale="en-US"))
    out = run_skill(payload)
    assert "unavailable" in out.reply.text
    assert sandbox_client.card(out_track_id_for(payload.msg_id))["status"] == "failed"


def test_the_stop_flag_finalizes_the_card_and_ends_the_answer_midway(dingtalk_sandbox, sandbox_client, stub,
                                                                    card_settings):
    stub.configure(tokens=400, inter_token_delay=0.05)  # a 20 s answer
    payload = to_skill(dingtalk_sandbox, sandbox_client, "talk for a while")
    payload = payload.replace(turn=payload.turn.replace(locale="en-US"))
    out_track_id = out_track_id_for(payload.msg_id)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(run_skill(payload).to_dict()))
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        cards = [c for c in sandbox_client.cards() if c["outTrackId"] == out_track_id]
        if cards and cards[0]["streams"].get("content"):
            break
        time.sleep(0.05)
    ai_card.cancel_flags().request(out_track_id)
    worker.join(15)  # well before the 20 s the whole answer takes
    assert not worker.is_alive() and result["outcome"] == "stopped"
    card = sandbox_client.card(out_track_id)
    assert card["status"] == "finished"
    assert card["streams"]["content"].endswith("(stopped)")
    # The LLM sees the bot hang up midway (at its next write): generation did not run to the end.
    wait_for(lambda: stub.requests()[0]["outcome"] == "client_gone", what="the stub to see the client go")
    assert stub.requests()[0]["tokens_sent"] < 400


def test_a_stream_that_outlives_the_skill_timeout_is_finalized_as_failed(dingtalk_sandbox, sandbox_client,
                                                                         card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "hang on", skill="hanging")
    payload = payload.replace(turn=payload.turn.replace(locale="en-US"))
    out = run_skill(payload)
    card = sandbox_client.card(out_track_id_for(payload.msg_id))
    assert card["status"] == "failed"
    assert card["streams"]["content"].startswith("thinking hard") and "never" not in card["streams"]["content"]
    assert "took too long" in out.reply.text


def test_a_streaming_skill_may_still_answer_with_a_whole_reply(dingtalk_sandbox, sandbox_client, card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "anything", skill="plain")
    out = run_skill(payload)
    assert out.reply.text == "no stream today"
    assert sandbox_client.card(out_track_id_for(payload.msg_id))["streams"]["content"] == "no stream today"


def test_a_retry_after_the_card_was_finalized_does_not_ask_the_llm_again(
        dingtalk_sandbox, sandbox_client, stub, card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "once only")
    first = run_skill(payload)
    asked = len(stub.state.requests)
    again = run_skill(payload)  # the task was redelivered after a crash before its ack
    assert len(stub.state.requests) == asked
    assert again.reply == first.reply
    assert len(sandbox_client.cards()) == 1


def test_a_retry_of_a_card_left_half_streamed_finalizes_the_same_card(
        dingtalk_sandbox, sandbox_client, stub, card_settings):
    payload = to_skill(dingtalk_sandbox, sandbox_client, "again please")
    out_track_id = out_track_id_for(payload.msg_id)
    # The first attempt created the card and streamed a little before its worker died.
    streamer = ai_card.card_streamer()
    from workers.dingtalk.card_client import CardTarget

    turn = payload.turn
    target = CardTarget.from_turn(turn, payload.delivery["robot_code"])
    streamer.client.create_and_deliver(out_track_id, TEMPLATE, target, {"content": "half an ans"})
    out = run_skill(payload)
    card = sandbox_client.card(out_track_id)
    assert card["status"] == "finished"
    assert card["streams"]["content"] == out.reply.text
    assert len(sandbox_client.cards()) == 1
