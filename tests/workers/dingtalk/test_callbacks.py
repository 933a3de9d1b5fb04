"""Card callbacks and tapped buttons reach the skill that owns the card as structured params; Stop stops."""

from __future__ import annotations

import json

import pytest

from testkit.envelopes import callback_envelope, card_callback, envelope
from testkit.personas import alice, bob, mallory
from workers.dingtalk import callbacks
from workers.errors import NothingToAnswer, PoisonMessage
from workers.payload import Order
from workers.stages.preprocess import preprocess
from workers.state import buttons, cards, ordering
from workers.state.cards import CancelFlags

pytestmark = pytest.mark.django_db

OWNER_TURN = {"msg_id": "msg-card==", "skill": "docsearch", "tenant_id": "corp-test",
              "conversation_id": "cid-g==", "conversation_type": "2", "user_id": alice.staff_id,
              "user_nick": "Alice", "locale": "en-US"}
DELIVERY = {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s",
            "session_webhook_expires_at": 0, "conversation_id": "cid-g==", "conversation_type": "2",
            "sender_staff_id": alice.staff_id, "sender_id": "", "robot_code": "rc"}


MALLORY_ID = mallory.user_id  # outside the org: no staff id, a DingTalk sender id


def own_card(out_track_id: str = "card-1", buttons_map: dict | None = None) -> None:
    cards.remember(out_track_id, cards.owner_for(OWNER_TURN, DELIVERY, buttons_map))


def order_of(payload: dict) -> Order:
    order = Order.from_dict(payload["order"])
    assert order is not None, "preprocess puts every message in line"
    return order


def run(data: dict, run_id: str = "run-1") -> dict:
    """preprocess's payload as it travels to the next stage (JSON)."""
    return json.loads(json.dumps(preprocess(data, run_id=run_id).to_dict()))


def test_a_submitted_form_becomes_form_data_for_the_owning_skill(worker_settings):
    own_card()
    data = card_callback("card-1", action_ids=["submit"], params={"query": "vacation policy"},
                         user_id=bob.staff_id, space_type="IM_GROUP", space_id="cid-g==")
    payload = run(callback_envelope(data))
    turn = payload["turn"]
    assert turn["params"] == {"type": "form_data", "fields": {"query": "vacation policy"},
                              "action": "submit", "out_track_id": "card-1"}
    assert turn["skill"] == "docsearch" and turn["intent"] == "form_data"
    assert turn["text"] == "vacation policy"  # text-reading skills still understand it
    assert (turn["conversation_id"], turn["user_id"]) == ("cid-g==", bob.staff_id)  # the clicker asks
    assert payload["delivery"]["sender_staff_id"] == bob.staff_id
    assert payload["reply"] is None


def test_a_registered_button_becomes_button_params(worker_settings):
    own_card(buttons_map={"btn-0": {"action": "schedule.confirm", "params": {"key": "k"}}})
    payload = run(callback_envelope(card_callback("card-1", action_ids=["btn-0"])))
    params = payload["turn"]["params"]
    assert params["type"] == "button" and params["action"] == "schedule.confirm"
    assert params["params"] == {"key": "k"} and params["key"] == "k"


def test_the_stop_button_sets_the_cancel_flag_and_answers_nothing(worker_settings, redis_conn):
    cards.remember("ai-card-7", cards.owner_for(OWNER_TURN, {}, kind=cards.AI_CARD))
    data = card_callback("ai-card-7", action_ids=["stop"])
    with pytest.raises(NothingToAnswer, match="stop"):
        run(callback_envelope(data))
    assert CancelFlags(redis_conn, worker_settings.redis_key_prefix)("ai-card-7")


@pytest.mark.parametrize(("who", "corp", "card", "why"), [
    (MALLORY_ID, "corp-test", "ai-card-7", "did not answer"),  # someone else's answer
    (alice.staff_id, "corp-evil", "ai-card-7", "from corp corp-evil"),  # the asker's id, another corp
    (alice.staff_id, "corp-test", "ai-card-unknown", "no such card"),  # a guessed outTrackId
    ("", "corp-test", "ai-card-7", "no user"),
])
def test_stop_on_someone_elses_card_is_refused(worker_settings, redis_conn, who, corp, card, why):
    cards.remember("ai-card-7", cards.owner_for(OWNER_TURN, {}, kind=cards.AI_CARD))
    with pytest.raises(NothingToAnswer, match=why):
        run(callback_envelope(card_callback(card, action_ids=["stop"], user_id=who, corp_id=corp)))
    assert not CancelFlags(redis_conn, worker_settings.redis_key_prefix)(card)


@pytest.mark.parametrize(("who", "corp", "space", "why"), [
    (MALLORY_ID, "corp-evil", ("IM_GROUP", "cid-g=="), "from corp corp-evil"),
    (MALLORY_ID, "corp-test", ("IM_ROBOT", ""), "outside the card's group"),  # not from the group
    (MALLORY_ID, "corp-test", ("IM_GROUP", "cid-other=="), "outside the card's group"),
])
def test_a_forged_card_callback_is_refused(worker_settings, who, corp, space, why):
    own_card(buttons_map={"btn-0": {"action": "schedule.cancel", "params": {"key": "k"}}})
    data = card_callback("card-1", action_ids=["btn-0"], user_id=who, corp_id=corp,
                         space_type=space[0], space_id=space[1])
    with pytest.raises(NothingToAnswer, match=why):
        run(callback_envelope(data))


def test_a_private_card_takes_callbacks_from_its_asker_only(worker_settings):
    private_turn = {**OWNER_TURN, "conversation_type": "1", "conversation_id": "cid-p=="}
    cards.remember("card-p", cards.owner_for(private_turn, {**DELIVERY, "conversation_type": "1"}))
    with pytest.raises(NothingToAnswer, match="private card tapped by another user"):
        run(callback_envelope(card_callback("card-p", action_ids=["x"], user_id=bob.staff_id)))
    assert run(callback_envelope(card_callback("card-p", action_ids=["x"])))["turn"]["user_id"] == alice.staff_id


def test_an_ai_card_takes_nothing_but_stop(worker_settings):
    cards.remember("ai-card-8", cards.owner_for(OWNER_TURN, {}, kind=cards.AI_CARD))
    with pytest.raises(NothingToAnswer, match="no skill owns"):
        run(callback_envelope(card_callback("ai-card-8", action_ids=["like"])))


def test_a_callback_for_a_card_nobody_owns_is_dropped_quietly(worker_settings):
    with pytest.raises(NothingToAnswer, match="no skill owns"):
        run(callback_envelope(card_callback("unknown-card", action_ids=["x"])))


def test_a_callback_with_unreadable_content_is_poison(worker_settings):
    data = card_callback("card-1")
    data["content"] = "{not json"
    with pytest.raises(PoisonMessage):
        run(callback_envelope(data))


def test_callbacks_are_ordered_in_the_owning_conversation(worker_settings):
    own_card()
    payload = run(callback_envelope(card_callback("card-1", action_ids=["x"], params={"a": "1"})))
    assert payload["order"]["conversation_id"] == "cid-g=="
    assert ordering.ahead_of(payload["msg_id"], order_of(payload)) == (0, 0)


@pytest.mark.parametrize("action_ids,values,stop", [
    (["stop"], {}, True), (["StopGenerating"], {}, True), ([], {"action": "stop"}, True),
    (["submit"], {"q": "stop"}, False)])
def test_stop_is_recognised_by_action_id(action_ids, values, stop):
    callback = callbacks.parse(card_callback("c", action_ids=action_ids, params=values))
    assert callbacks.wants_stop(callback) is stop


def test_a_tapped_button_text_reaches_the_card_skill_once(worker_settings):
    buttons.remember("corp-test", "cid-tap==", alice.staff_id, skill="schedule", msg_id="m0", buttons=[
        {"title": "确认", "action": "schedule.confirm", "params": {"command": {"a": 1}, "key": "k9"}}])
    tap = alice.robot_message("确认", conversation_id="cid-tap==")
    turn = run(envelope(tap))["turn"]
    assert turn["skill"] == "schedule" and turn["intent"] == "button"
    params = turn["params"]
    assert params["type"] == "button" and params["action"] == "schedule.confirm" and params["via"] == "tap"
    assert params["command"] == {"a": 1} and params["key"] == "k9"  # where the schedule skill reads them
    # The same message again (a retried task) is still the tap; a new message is just text.
    assert buttons.take("corp-test", "cid-tap==", alice.staff_id, "确认", tap["msgId"]) is not None
    again = run(alice.envelope("确认", conversation_id="cid-tap=="), "run-2")
    assert again["turn"]["params"] == {} and again["turn"]["skill"] == "echo"


def test_a_tap_from_another_user_or_chat_is_just_text(worker_settings):
    buttons.remember("corp-test", "cid-tap==", alice.staff_id, skill="schedule", msg_id="m0",
                     buttons=[{"title": "OK", "action": "schedule.confirm", "params": {}}])
    for who, cid in ((mallory, "cid-tap=="), (alice, "cid-other==")):
        turn = run(who.envelope("ok", conversation_id=cid), f"r-{who.key}-{cid}")["turn"]
        assert turn["params"] == {} and turn["skill"] == "echo"


def test_a_duplicate_delivery_never_holds_the_conversation(worker_settings):
    data = bob.robot_message("hello", conversation_id="cid-dup==")
    first = run(envelope(data))
    ordering.finish(first["msg_id"], Order.from_dict(first["order"]))  # answered
    with pytest.raises(Exception, match="already claimed"):
        run(envelope(data), run_id="second-delivery")
    later = run(envelope(bob.robot_message("next", conversation_id="cid-dup==")), "run-9")
    assert ordering.ahead_of(later["msg_id"], order_of(later)) == (0, 0)


def test_a_duplicate_while_the_original_runs_keeps_the_original_in_line(worker_settings):
    data = bob.robot_message("hello", conversation_id="cid-dup2==")
    run(envelope(data))  # still running
    with pytest.raises(Exception, match="already claimed"):
        run(envelope(data), run_id="second-delivery")
    later = run(envelope(bob.robot_message("next", conversation_id="cid-dup2==")), "run-9")
    assert ordering.ahead_of(later["msg_id"], order_of(later)) == (1, 0)
