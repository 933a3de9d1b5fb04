"""Frame parsing and ACK shapes follow the Stream protocol reference."""

import json

import pytest

from ingest.protocol import (
    FrameError,
    ack_for,
    callback_ack,
    event_ack,
    parse_frame,
    pong,
    registration_body,
)


def _frame(**over):
    base = {
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {"topic": "/v1.0/im/bot/messages/get", "messageId": "m-1", "time": "1700000000000"},
        "data": json.dumps({"msgId": "msg1"}),
    }
    base.update(over)
    return json.dumps(base)


def test_a_callback_frame_parses_with_its_headers():
    frame = parse_frame(_frame())
    assert frame.type == "CALLBACK"
    assert frame.topic == "/v1.0/im/bot/messages/get"
    assert frame.message_id == "m-1"
    assert frame.data_json() == {"msgId": "msg1"}


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"type": "CALLBACK", "data": "{}"}), "no headers"),
        (json.dumps({"type": "CALLBACK", "headers": {"topic": "x"}, "data": "{}"}), "messageId"),
        (json.dumps({"type": "BOGUS", "headers": {"messageId": "a"}, "data": "{}"}), "unknown type"),
    ],
)
def test_bad_frames_raise_a_frame_error_with_a_reason(text, reason):
    with pytest.raises(FrameError, match=reason):
        parse_frame(text)


def test_data_that_is_not_json_raises_on_decode():
    frame = parse_frame(_frame(data="<xml/>"))
    with pytest.raises(FrameError, match="not JSON"):
        frame.data_json()


def test_callback_ack_carries_data_as_a_string():
    ack = json.loads(callback_ack("m-1"))
    assert ack["code"] == 200
    assert ack["headers"]["messageId"] == "m-1"
    assert isinstance(ack["data"], str)
    assert json.loads(ack["data"]) == {"response": None}


def test_event_ack_says_success():
    frame = parse_frame(_frame(type="EVENT", headers={"topic": "*", "messageId": "e-1"}))
    ack = json.loads(ack_for(frame))
    assert json.loads(ack["data"]) == {"status": "SUCCESS", "message": ""}
    assert json.loads(event_ack("e-2", "LATER"))["headers"]["messageId"] == "e-2"


def test_pong_echoes_the_opaque_value():
    ping = parse_frame(
        _frame(type="SYSTEM", headers={"topic": "ping", "messageId": "p-1"}, data=json.dumps({"opaque": "xyz"}))
    )
    answer = json.loads(pong(ping))
    assert answer["headers"]["messageId"] == "p-1"
    assert json.loads(answer["data"]) == {"opaque": "xyz"}


def test_registration_subscribes_to_bot_messages_cards_and_events():
    body = registration_body("id", "secret")
    topics = {(s["type"], s["topic"]) for s in body["subscriptions"]}
    assert ("CALLBACK", "/v1.0/im/bot/messages/get") in topics
    assert ("CALLBACK", "/v1.0/card/instances/callback") in topics
    assert ("EVENT", "*") in topics
