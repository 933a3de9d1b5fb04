"""The typed hand-off between stages: JSON primitives on the wire, payloads of the dict era still load."""

from __future__ import annotations

import json

import pytest

from skills.api import Reply, Turn
from workers.payload import Order, StagePayload

TURN = Turn(msg_id="m1", tenant_id="corp1", conversation_id="cid-1", conversation_type="2", user_id="alice",
            text="下午三点开会", intent="schedule.create", skill="schedule", confidence=0.9,
            params={"type": "message", "mentions": ["bob"]}, history=[{"role": "user", "text": "hi"}],
            profile={"department": "Sales"}, received_at=1_800_000_000.5)
DELIVERY = {"session_webhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s",
            "session_webhook_expires_at": 0, "conversation_id": "cid-1", "conversation_type": "2",
            "sender_staff_id": "alice", "sender_id": "$:LWCP_v1:$x", "robot_code": "rc"}

# What the dict-era preprocess → run_skill → postprocess handed to deliver (dead letters hold these).
DICT_ERA_DELIVER_PAYLOAD = {
    "msg_id": "m1", "run_id": "run-1", "turn": TURN.to_dict(), "delivery": DELIVERY,
    "reply": {"text": "好的", "kind": "text", "title": "", "buttons": [], "card": {}, "meta": {}},
    "notes": [], "order": {"tenant_id": "corp1", "conversation_id": "cid-1", "seq": 1_800_000_000_000.0,
                           "registered_at": 1_800_000_000.6},
    "record": {"user_id": 7, "preprocessed_at": 1.0, "skill_done_at": 2.0, "postprocessed_at": 3.0,
               "skill": "schedule", "intent": "schedule.create"},
    "outcome": "ok",
    "replies": [{"text": "好的", "kind": "text", "title": "好的", "buttons": [], "card": {},
                 "meta": {"part": 1, "of": 1}}],
}


def full_payload() -> StagePayload:
    return StagePayload(
        msg_id="m1", turn=TURN, delivery=DELIVERY, run_id="run-1",
        reply=Reply(text="| a |\n|---|", kind="action_card", buttons=[{"title": "OK", "action": "x"}]),
        notes=("(truncated)",), order=Order("corp1", "cid-1", 1_800_000_000_000.0, 1.5, waiting_since=2.5),
        record={"user_id": 7, "preprocessed_at": 1.0}, outcome="ok",
        replies=(Reply(text="part", meta={"part": 1, "of": 1}),), requeued={"deliver": 2}, throttled=1,
    )


def test_a_payload_survives_json_unchanged():
    payload = full_payload()
    wire = json.dumps(payload.to_dict(), ensure_ascii=False)
    assert StagePayload.from_dict(json.loads(wire)) == payload


def test_the_wire_shape_is_the_dict_the_stages_passed_before():
    wire = full_payload().to_dict()
    assert set(DICT_ERA_DELIVER_PAYLOAD) <= set(wire)
    assert wire["turn"] == TURN.to_dict() and wire["order"]["waiting_since"] == 2.5


def test_a_dict_era_payload_loads_as_it_was_written():
    payload = StagePayload.from_dict(json.loads(json.dumps(DICT_ERA_DELIVER_PAYLOAD)))
    assert payload.turn == TURN and payload.delivery == DELIVERY
    assert payload.replies == (Reply(text="好的", title="好的", meta={"part": 1, "of": 1}),)
    assert payload.order == Order("corp1", "cid-1", 1_800_000_000_000.0, 1_800_000_000.6)
    assert (payload.requeued, payload.throttled, payload.order.waiting_since) == ({}, 0, 0.0)
    assert payload.to_dict() == {**DICT_ERA_DELIVER_PAYLOAD, "requeued": {}, "throttled": 0}


def test_an_early_payload_with_few_keys_loads_with_defaults():
    early = StagePayload.from_dict({"msg_id": "m2", "turn": {**TURN.to_dict(), "msg_id": "m2"}, "reply": None})
    assert (early.reply, early.replies, early.order, early.delivery, early.notes) == (None, (), None, {}, ())


def test_keys_this_version_does_not_know_are_kept():
    newer = {**DICT_ERA_DELIVER_PAYLOAD, "replay": {"by": "ops"}}
    assert StagePayload.from_dict(newer).to_dict()["replay"] == {"by": "ops"}


@pytest.mark.parametrize("broken", [
    None, [], "text", {"msg_id": "m"}, {"msg_id": "m", "turn": "not a turn"},
    {"msg_id": "m", "turn": {"msg_id": "m"}},  # a turn without its required fields
    {"turn": {**TURN.to_dict(), "msg_id": ""}},  # no msg_id anywhere
    {**DICT_ERA_DELIVER_PAYLOAD, "replies": [{"kind": "text"}]},  # a reply without text
    {**DICT_ERA_DELIVER_PAYLOAD, "reply": "not a reply"},
])
def test_what_is_not_a_payload_is_refused_with_a_reason(broken):
    with pytest.raises(ValueError):
        StagePayload.from_dict(broken)
