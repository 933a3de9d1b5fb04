"""Envelopes are JSON primitives and survive a round trip."""

import json

import pytest

from contract.envelope import Envelope
from ingest.envelope import envelope_from_frame
from ingest.protocol import FrameError, parse_frame


def _bot_frame(data: dict) -> str:
    return json.dumps(
        {
            "type": "CALLBACK",
            "headers": {"topic": "/v1.0/im/bot/messages/get", "messageId": "push-1"},
            "data": json.dumps(data),
        }
    )


BOT_DATA = {
    "msgId": "msgABC==",
    "msgtype": "text",
    "conversationType": "2",
    "conversationId": "cid1==",
    "senderId": "$:LWCP_v1:$x",
    "senderStaffId": "staff1",
    "senderNick": "Alice",
    "chatbotCorpId": "corp1",
    "text": {"content": " 你好"},
}


def test_a_robot_message_becomes_an_envelope_keyed_by_msg_id():
    env = envelope_from_frame(parse_frame(_bot_frame(BOT_DATA)), tenant_id="t", received_at=1.5)
    assert env.msg_id == "msgABC=="
    assert env.message_id == "push-1"
    assert env.conversation_type == "2"
    assert env.sender_staff_id == "staff1"
    assert env.tenant_id == "corp1"
    assert env.payload["text"]["content"] == " 你好"
    assert env.received_at == 1.5


def test_an_envelope_round_trips_through_json():
    env = envelope_from_frame(parse_frame(_bot_frame(BOT_DATA)), tenant_id="t")
    again = Envelope.from_dict(json.loads(json.dumps(env.to_dict())))
    assert again == env
    assert Envelope.from_json(env.to_json()) == env


def test_a_robot_message_without_msg_id_is_rejected():
    data = dict(BOT_DATA)
    del data["msgId"]
    with pytest.raises(FrameError, match="no msgId"):
        envelope_from_frame(parse_frame(_bot_frame(data)), tenant_id="t")


def test_unknown_envelope_fields_are_refused():
    with pytest.raises(ValueError, match="unknown envelope fields"):
        Envelope.from_dict({"msg_id": "a", "message_id": "b", "topic": "t", "frame_type": "CALLBACK",
                            "tenant_id": "x", "surprise": 1})


def test_a_card_callback_uses_the_push_id_and_the_clicking_user():
    frame = parse_frame(
        json.dumps(
            {
                "type": "CALLBACK",
                "headers": {"topic": "/v1.0/card/instances/callback", "messageId": "push-9"},
                "data": json.dumps({"outTrackId": "o1", "userId": "u1", "corpId": "c1", "type": "actionCallback"}),
            }
        )
    )
    env = envelope_from_frame(frame, tenant_id="t")
    assert env.msg_id == "push-9"
    assert env.sender_staff_id == "u1"
    assert env.tenant_id == "c1"
