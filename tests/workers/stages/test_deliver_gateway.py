"""Deliver with the gateway: @ on the first part, action cards and their tap buttons, interactive cards."""

from __future__ import annotations

import pytest

from skills.api import Reply
from testkit.envelopes import envelope_from_push
from testkit.personas import Persona, alice, bob, mallory
from workers.dingtalk.card_streamer import out_track_id_for
from workers.payload import StagePayload
from workers.stages.deliver import deliver
from workers.stages.postprocess import postprocess, reply_parts
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill
from workers.state import buttons, cards, reply_state

pytestmark = pytest.mark.django_db


def ready(server, client, text="hi", who: Persona = alice, **message) -> StagePayload:
    injected = who.send(client, text, **message)
    env = envelope_from_push(server, injected["messageId"])
    return postprocess(run_skill(preprocess(env, run_id=f"run-{injected['msgId']}")))


def with_reply(payload: StagePayload, reply: Reply, max_bytes: int = 12000) -> StagePayload:
    return payload.replace(turn=payload.turn.replace(skill="schedule"),
                           replies=tuple(reply_parts(reply, [], max_bytes)))


def test_a_long_group_answer_mentions_the_asker_on_the_first_part_only(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready(dingtalk_sandbox, sandbox_client, "hi", conversation_type="2", who=bob)
    text = "\n".join(f"- point {i} " + "x" * 40 for i in range(30))
    deliver(with_reply(payload, Reply(text=text, kind="markdown"), max_bytes=600))
    replies = sandbox_client.replies()
    assert len(replies) > 1
    assert replies[0]["body"]["at"]["atUserIds"] == [bob.staff_id]
    assert replies[0]["body"]["markdown"]["text"].endswith(f"@{bob.staff_id}")
    assert all(r["body"]["at"]["atUserIds"] == [] for r in replies[1:])


def test_an_action_card_goes_out_and_its_buttons_are_remembered_for_the_tap(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready(dingtalk_sandbox, sandbox_client, "remind me")
    card = Reply(text="**Meeting** at 15:00", kind="action_card", title="New reminder", buttons=[
        {"title": "Confirm", "action": "schedule.confirm", "params": {"key": "k"}},
        {"title": "Cancel", "action": "schedule.dismiss", "params": {}}])
    assert deliver(with_reply(payload, card))["result"] == "sent"
    [reply] = sandbox_client.replies()
    assert reply["msgtype"] == "actionCard"
    assert [b["title"] for b in reply["body"]["actionCard"]["btns"]] == ["Confirm", "Cancel"]
    turn = payload.turn
    tapped = buttons.take(turn.tenant_id, turn.conversation_id, alice.user_id, "confirm", "tap-1")
    assert tapped == {"action": "schedule.confirm", "params": {"key": "k"}, "skill": "schedule",
                      "msg_id": payload.msg_id}


def test_an_action_card_after_the_webhook_expired_uses_the_openapi_card(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready(dingtalk_sandbox, sandbox_client, "remind me", who=bob)
    payload.delivery["session_webhook_expires_at"] = 1
    card = Reply(text="Sure?", kind="action_card", buttons=[{"title": "Yes", "action": "a"},
                                                            {"title": "No", "action": "b"}])
    deliver(with_reply(payload, card))
    [reply] = sandbox_client.replies()
    assert reply["via"] == "batchSend" and reply["msg_key"] == "sampleActionCard2"


def test_an_interactive_card_is_created_and_its_owner_remembered(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready(dingtalk_sandbox, sandbox_client, "search form")
    form = Reply(text="Search the handbook", kind="card", card={
        "template_id": "tpl.form", "params": {"title": "Search"},
        "buttons": {"submit": {"action": "docsearch.query", "params": {}}}})
    deliver(with_reply(payload, form))
    out_track_id = out_track_id_for(f"{payload.msg_id}:0")
    assert sandbox_client.card(out_track_id)["cardTemplateId"] == "tpl.form"
    owner = cards.lookup(out_track_id)
    assert owner is not None and owner["skill"] == "schedule" and owner["user_id"] == alice.user_id
    assert owner["buttons"] == {"submit": {"action": "docsearch.query", "params": {}}}
    assert reply_state.get(payload.msg_id) == reply_state.SENT


def test_a_card_without_a_template_falls_back_to_markdown(dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready(dingtalk_sandbox, sandbox_client, "card please")
    deliver(with_reply(payload, Reply(text="**fallback**", kind="card", card={"params": {"a": "b"}})))
    [reply] = sandbox_client.replies()
    assert reply["msgtype"] == "markdown" and "**fallback**" in reply["text"]


def test_many_replies_within_a_small_budget_each_arrive_once(dingtalk_sandbox, sandbox_client,
                                                             sandbox_settings, resources):
    resources.set(DINGTALK_QPS_WEBHOOK="4")
    sandbox_client.configure(qps_limits={"webhook": 4})
    people = (alice, bob, mallory)  # three conversations, eight replies
    payloads = [ready(dingtalk_sandbox, sandbox_client, f"m{i}", who=people[i % 3]) for i in range(8)]
    for payload in payloads:
        assert deliver(payload)["result"] == "sent"
    assert sandbox_client.state()["throttled"] == 0  # the shared budget kept us under the limit
    assert sorted(r["msg_id"] for r in sandbox_client.replies()) == sorted(p.msg_id for p in payloads)
