"""Preprocess: claim, normalise, profile, session, routing and the delivery target of a message."""

from __future__ import annotations

import json

import pytest

from testkit.envelopes import envelope, robot_message
from testkit.personas import TENANT, alice, bob, mallory
from webapp.models import MessageRecord, UserProfile
from workers import phrases
from workers.errors import DuplicateMessage, NothingToAnswer, PoisonMessage
from workers.payload import StagePayload
from workers.stages.preprocess import UNSUPPORTED_TYPE, preprocess
from workers.state import session

pytestmark = pytest.mark.django_db


def run(env: dict, run_id: str = "run-1") -> StagePayload:
    payload = preprocess(env, run_id=run_id)
    assert StagePayload.from_dict(json.loads(json.dumps(payload.to_dict()))) == payload  # it travels as JSON
    return payload


def test_it_strips_the_text_and_routes_plain_text_to_echo(worker_settings):
    payload = run(envelope(text="  hello there \n"))
    assert payload.turn.text == "hello there"
    assert payload.turn.skill == "echo"
    assert payload.reply is None


@pytest.mark.parametrize("text", ["help", "Help me", "帮助", "? what", "？"])
def test_it_routes_help_words_to_the_help_skill(worker_settings, text):
    assert run(envelope(text=text)).turn.skill == "help"


def test_an_empty_text_gets_the_please_type_something_reply(worker_settings):
    payload = run(envelope(text="   "))
    assert payload.reply.text == phrases.EMPTY_TEXT
    assert payload.turn.skill == ""


def test_a_huge_text_is_truncated_with_a_note(worker_settings):
    limit = worker_settings.input_max_chars
    payload = run(envelope(text="x" * (limit * 3)))
    assert len(payload.turn.text) == limit
    assert payload.notes and str(limit) in payload.notes[0]


def test_an_unsupported_message_type_gets_a_polite_reply(worker_settings):
    data = robot_message(msgtype="location", extra={"content": {"latitude": "30.1"}})
    payload = run(envelope(data))
    assert payload.reply.text == UNSUPPORTED_TYPE


def test_rich_text_and_audio_are_read_as_text(worker_settings):
    rich = robot_message(msgtype="richText", extra={"content": {"richText": [
        {"text": "hello "}, {"text": "world"}]}})
    assert run(envelope(rich)).turn.text == "hello world"
    audio = robot_message(msgtype="audio", extra={"content": {"recognition": "语音内容"}})
    assert run(envelope(audio), run_id="run-2").turn.text == "语音内容"


def test_it_creates_the_profile_from_the_staff_id(worker_settings):
    payload = run(alice.envelope("hi"))
    profile = UserProfile.objects.get(staff_id=alice.staff_id)
    assert profile.nick == alice.nick
    assert payload.turn.user_id == alice.staff_id
    assert payload.record["user_id"] == profile.pk
    assert payload.turn.profile["locale"] == "zh-CN"


def test_it_creates_the_profile_from_the_sender_id_without_a_staff_id(worker_settings):
    payload = run(mallory.envelope("hi"))
    profile = UserProfile.objects.get(sender_id=mallory.sender_id)
    assert profile.staff_id == ""
    assert payload.turn.user_id == mallory.sender_id == mallory.user_id


def test_a_known_user_keeps_one_profile_and_gets_the_new_nick(worker_settings):
    run(bob.envelope("hi"))
    run(bob.envelope("hi", nick="Bobby"), run_id="run-2")  # renamed in DingTalk
    assert UserProfile.objects.filter(staff_id=bob.staff_id).count() == 1
    assert UserProfile.objects.get(staff_id=bob.staff_id).nick == "Bobby"


def test_it_loads_the_session_of_this_user_in_this_conversation(worker_settings):
    data = alice.robot_message("again", conversation_id="cid-x")
    session.append_turn(TENANT, "cid-x", alice.user_id,
                        [{"role": "user", "text": "first"}, {"role": "assistant", "text": "ok"}])
    session.append_turn(TENANT, "cid-other", alice.user_id, [{"role": "user", "text": "elsewhere"}])
    session.append_turn(TENANT, "cid-x", bob.user_id, [{"role": "user", "text": "bob's"}])
    history = run(envelope(data)).turn.history
    assert [h["text"] for h in history] == ["first", "ok"]


def test_the_delivery_target_travels_with_the_turn(worker_settings):
    data = bob.robot_message("hi", conversation_type="2", robot_code="rc-1")
    target = run(envelope(data)).delivery
    assert target == {
        "session_webhook": data["sessionWebhook"],
        "session_webhook_expires_at": data["sessionWebhookExpiredTime"],
        "conversation_id": data["conversationId"],
        "conversation_type": "2",
        "sender_staff_id": bob.staff_id,
        "sender_id": data["senderId"],
        "robot_code": "rc-1",
    }


def test_it_records_the_message_when_claiming_it(worker_settings):
    env = envelope(text="hi")
    run(env, run_id="run-7")
    record = MessageRecord.objects.get(msg_id=env["msg_id"])
    assert record.claimed_by == "run-7"
    assert record.received_at is not None
    assert record.conversation_id == env["conversation_id"]


def test_a_second_delivery_of_the_same_message_stops_here(worker_settings):
    env = envelope(text="hi")
    run(env, run_id="run-1")
    with pytest.raises(DuplicateMessage):
        run(dict(env, message_id="push-again"), run_id="run-2")


def test_a_redelivered_task_is_processed_again(worker_settings):
    env = envelope(text="hi")
    first = run(env, run_id="run-1")
    again = run(env, run_id="run-1")
    assert again.turn.text == first.turn.text


def test_events_without_a_handler_stop_quietly(worker_settings):
    env = envelope(text="hi")
    env["topic"] = "*"
    with pytest.raises(NothingToAnswer):
        run(env)


@pytest.mark.parametrize("broken", [{"msg_id": "m"}, {"not": "an envelope"}])
def test_a_malformed_envelope_is_poison(worker_settings, broken):
    with pytest.raises(PoisonMessage):
        run(broken)


def test_a_message_without_any_sender_is_poison(worker_settings):
    env = envelope(text="hi", staff_id="", sender_id="")
    env["sender_id"] = ""
    env["payload"]["senderId"] = ""
    with pytest.raises(PoisonMessage):
        run(env)
