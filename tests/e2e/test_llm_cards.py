"""LLM chat through the real chain: answers stream into AI cards that always end finalized."""

from __future__ import annotations

import functools
import json
import time

import pytest
import redis

from contract.envelope import TOPIC_CARD_CALLBACK
from sandbox.dingtalk.messages import corp_id
from sandbox.llm import STUB_MARK, StubLLMServer
from testkit.envelopes import card_callback
from testkit.personas import alice, bob
from testkit.stack import SANDBOX_CLIENT_ID, Stack
from testkit.waits import wait_for
from tests.support.skill_stack import CARD_TEMPLATE, card_of, finished_card, run_bot, start_skills
from webapp.models import AuditLog, MessageRecord, MessageStatus
from webapp.models.audit import AuditAction
from workers.dingtalk.card_streamer import out_track_id_for
from workers.state.cards import CancelFlags

pytestmark = pytest.mark.slow
SANDBOX_CORP = corp_id(SANDBOX_CLIENT_ID)  # callbacks come from the corp the card was sent in


def bot_env(stub, **extra: str) -> dict[str, str]:
    return {"DINGTALK_AI_CARD_TEMPLATE_ID": CARD_TEMPLATE, "LLM_BASE_URL": stub.base_url,
            "LLM_MODEL": "stub-llm", "LLM_READ_TIMEOUT_SECONDS": "2", **extra}


def replied(msg_id: str) -> MessageRecord | None:
    record = MessageRecord.objects.filter(msg_id=msg_id).first()
    return record if record and record.status == MessageStatus.REPLIED else None


def test_an_answer_streams_into_one_finalized_card_and_the_session_remembers_it(stack: Stack, stub):
    stub.configure(inter_token_delay=0.02)
    client = run_bot(stack, **bot_env(stub))
    first = alice.send(client, "hello, what can you do?")
    card = finished_card(client, out_track_id_for(first["msgId"]))
    assert card["status"] == "finished"
    assert card["cardTemplateId"] == CARD_TEMPLATE
    text = card["streams"]["content"]
    assert text.startswith(STUB_MARK) and "hello, what can you do?" in text
    streamed = [u for u in card["updates"] if u["kind"] == "streaming"]
    assert sum(u["isFinalize"] for u in streamed) == 1

    record = wait_for(lambda: replied(first["msgId"]), 15, "the record to say replied")
    assert record.channel == "card" and record.skill == "llm_chat"
    # Its data-flow audit row names the LLM that saw the text (the endpoint, not its key).
    flow = AuditLog.objects.get(action=AuditAction.MESSAGE_DATA_FLOW, target_id=first["msgId"])
    assert flow.detail["recipients"] == [f"llm:{stub.base_url}"] and flow.detail["channel"] == "card"
    # The card is the reply: nothing else was sent for this message.
    assert [r["via"] for r in client.replies(conversation_id=first["conversationId"])] == ["card"]
    session = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    key = f"{stack.redis_prefix}session:{record.tenant_id}:{first['conversationId']}:alice"
    last = json.loads(session.lrange(key, -1, -1)[0])
    assert (last["role"], last["text"]) == ("assistant", text)

    # The next question carries the history to the LLM.
    second = alice.send(client, "and what else?")
    follow_up = finished_card(client, out_track_id_for(second["msgId"]))["streams"]["content"]
    assert "2 earlier messages" in follow_up
    asked = [r for r in stub.state.requests if r["stream"]]
    assert [m["content"] for m in asked[-1]["messages"][1:3]] == ["hello, what can you do?", text]

    group = bob.send(client, "hi everyone", conversation_type="2")
    finished_card(client, out_track_id_for(group["msgId"]))
    [group_card] = client.replies(conversation_id=group["conversationId"], via="card")
    assert group_card["conversation_type"] == "2"


def test_llm_faults_end_on_finalized_error_cards_with_a_polite_message(stack: Stack):
    stub = StubLLMServer(port=0).start()  # its own stub: this test stops it
    stub.configure(rules=[
        {"match": "TIMEOUT", "first_token_delay": 6.0},
        {"match": "BOOM", "error_status": 500},
        {"match": "CUT", "cut_after": 3},
    ])
    client = run_bot(stack, **bot_env(stub))
    started = time.monotonic()
    # Three people at once (each needs a staff id for a private card): more than the personas.
    sent = {fault: client.send_message(f"{fault} please", user_id=f"user-{fault.lower()}")
            for fault in ("TIMEOUT", "BOOM", "CUT")}
    polite = {"TIMEOUT": "超时", "BOOM": "暂时不可用", "CUT": "中断"}
    for fault, message in sent.items():
        card = finished_card(client, out_track_id_for(message["msgId"]), timeout=30)
        assert card["status"] == "failed", fault
        assert polite[fault] in card["streams"]["content"], (fault, card["streams"])
        assert [u["isError"] for u in card["updates"] if u["kind"] == "streaming" and u["isFinalize"]] == [True]
        wait_for(functools.partial(replied, message["msgId"]), 15, f"{fault} to be recorded as replied")
    assert time.monotonic() - started < 30  # nothing hung

    stub.stop()  # the LLM server is gone: connection refused
    refused = alice.send(client, "anyone there?")
    card = finished_card(client, out_track_id_for(refused["msgId"]), timeout=30)
    assert card["status"] == "failed" and "暂时不可用" in card["streams"]["content"]
    assert len(client.replies(conversation_id=refused["conversationId"])) == 1


def test_the_stop_button_finalizes_a_streaming_card_within_a_second(stack: Stack, stub):
    stub.configure(tokens=400, inter_token_delay=0.1)  # a 40 s answer
    client = run_bot(stack, **bot_env(stub))
    message = alice.send(client, "tell me a long story")
    out_track_id = out_track_id_for(message["msgId"])

    def streaming() -> bool:
        card = card_of(client, out_track_id)
        return bool(card and card["streams"].get("content"))

    wait_for(streaming, 30, "the card to show text")
    # The user presses Stop: DingTalk pushes the card callback, the gateway sets the flag.
    stopped_at = time.monotonic()
    client.push(TOPIC_CARD_CALLBACK, card_callback(out_track_id, action_ids=["stop"], user_id=alice.staff_id,
                                                   corp_id=SANDBOX_CORP))
    card = finished_card(client, out_track_id, timeout=5)
    assert time.monotonic() - stopped_at < 1.0
    flags = CancelFlags(redis.Redis.from_url(stack.redis_url), stack.redis_prefix)
    assert flags(out_track_id)
    assert card["status"] == "finished"
    assert card["streams"]["content"].endswith("（已停止）")
    wait_for(functools.partial(replied, message["msgId"]), 15, "the stopped answer to be recorded")


def test_a_skills_worker_killed_mid_stream_leaves_a_card_that_the_retry_finalizes(stack: Stack, stub):
    stub.configure(tokens=60, inter_token_delay=0.1)  # a 6 s answer
    client = run_bot(stack, **bot_env(stub))
    message = bob.send(client, "explain streaming slowly")
    out_track_id = out_track_id_for(message["msgId"])

    def half_shown() -> bool:
        card = card_of(client, out_track_id)
        return bool(card and card["status"] == "inputting" and len(card["streams"].get("content", "")) > 20)

    wait_for(half_shown, 30, "the card to be half streamed")
    [skills] = [p for p in stack.procs if p.role == "worker-skills" and p.alive()]
    stack.kill(skills)  # kill -9 of the worker and its pool
    assert card_of(client, out_track_id)["status"] == "inputting"
    start_skills(stack)
    card = finished_card(client, out_track_id, timeout=60)
    assert card["status"] == "finished"
    full = [r for r in stub.state.requests if r["stream"]]
    assert len(full) == 2  # asked again by the retry, into the same card
    assert card["streams"]["content"].startswith(STUB_MARK)
    wait_for(functools.partial(replied, message["msgId"]), 15, "the retried answer to be recorded")
    assert len(client.cards()) == 1
    assert [r["via"] for r in client.replies(conversation_id=message["conversationId"])] == ["card"]
