"""Card endpoints: create/deliver, update, AI-card streaming with its 1 KB limit and guid idempotency."""

from __future__ import annotations

import pytest

from sandbox.client import http_client
from testkit.personas import alice
from tests.sandbox.stream import HTTP

TOKEN_HEADER = "x-acs-dingtalk-access-token"


@pytest.fixture
def api(server):
    with http_client(base_url=server.base_url, timeout=5) as client:
        token = client.post(
            "/v1.0/oauth2/accessToken",
            json={"appKey": "sandbox-client-id", "appSecret": "sandbox-client-secret"},
        ).json()["accessToken"]
        client.headers[TOKEN_HEADER] = token
        yield client


def _create_and_deliver(api, conversation_id: str, track: str = "track-1", **extra):
    body = {
        "cardTemplateId": "ai-card.schema",
        "outTrackId": track,
        "cardData": {"cardParamMap": {"flowStatus": "1", "content": ""}},
        "callbackType": "STREAM",
        "openSpaceId": f"dtv1.card//IM_GROUP.{conversation_id}",
        "imGroupOpenDeliverModel": {"robotCode": "sandbox-client-id"},
        "userIdType": 1,
        **extra,
    }
    return api.post("/v1.0/card/instances/createAndDeliver", json=body)


def _stream(api, guid: str, content: str, **flags):
    body = {"outTrackId": "track-1", "guid": guid, "key": "content", "content": content, **flags}
    return api.put("/v1.0/card/streaming", json=body)


def test_a_streamed_ai_card_is_one_reply_whose_text_follows_the_stream(server, control, api):
    sent = control.send_message("tell me a story", conversation_type="2")
    answer = _create_and_deliver(api, sent["conversationId"])
    assert answer.status_code == 200
    result = answer.json()["result"]
    assert result["outTrackId"] == "track-1" and result["deliverResults"][0]["success"] is True
    assert _stream(api, "g1", "Once upon").json() == {"success": True, "result": True}
    _stream(api, "g2", " a time")
    [reply] = control.replies(conversation_id=sent["conversationId"])
    assert reply["via"] == "card" and reply["text"] == "Once upon a time"
    assert reply["card_status"] == "inputting"
    _stream(api, "g3", "The end.", isFull=True, isFinalize=True)
    card = control.card("track-1")
    assert card["status"] == "finished" and card["streams"] == {"content": "The end."}
    assert [u["guid"] for u in card["updates"]] == ["g1", "g2", "g3"]
    assert card["updates"][2]["isFinalize"] is True and card["updates"][2]["isFull"] is True
    assert control.replies()[0]["text"] == "The end."


def test_a_retried_streaming_call_with_the_same_guid_is_applied_once(server, control, api):
    sent = control.send_message("x", conversation_type="2")
    _create_and_deliver(api, sent["conversationId"])
    _stream(api, "same", "abc")
    _stream(api, "same", "abc")
    card = control.card("track-1")
    assert card["streams"]["content"] == "abc"
    assert [u["duplicate"] for u in card["updates"]] == [False, True]


def test_streaming_more_than_1kb_in_one_call_is_refused(server, control, api):
    sent = control.send_message("x", conversation_type="2")
    _create_and_deliver(api, sent["conversationId"])
    answer = _stream(api, "big", "字" * 400)  # 1,200 bytes in UTF-8
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter.Content"


def test_streaming_to_an_unknown_card_is_refused(server, api):
    answer = _stream(api, "g", "x")
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter.OutTrackId"


def test_an_error_finishes_the_card_as_failed_and_late_updates_are_flagged(server, control, api):
    sent = control.send_message("x", conversation_type="2")
    _create_and_deliver(api, sent["conversationId"])
    _stream(api, "g1", "oops", isError=True)
    _stream(api, "g2", "too late")
    card = control.card("track-1")
    assert card["status"] == "failed" and card["streams"] == {"content": "oops"}
    assert [u["after_finalize"] for u in card["updates"]] == [False, True]


def test_create_then_deliver_to_a_private_chat_and_update_by_key(server, control, api):
    sent = alice.send(control, "x")
    created = api.post("/v1.0/card/instances", json={
        "cardTemplateId": "tpl", "outTrackId": "t2",
        "cardData": {"cardParamMap": {"title": "Leave", "content": "pending"}}})
    assert created.json() == {"success": True, "result": "t2"}
    delivered = api.post("/v1.0/card/instances/deliver", json={
        "outTrackId": "t2", "openSpaceId": "dtv1.card//IM_ROBOT.alice",
        "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT"}, "userIdType": 1})
    assert delivered.json()["result"][0]["spaceType"] == "IM_ROBOT"
    updated = api.put("/v1.0/card/instances", json={
        "outTrackId": "t2", "cardData": {"cardParamMap": {"content": "approved"}},
        "cardUpdateOptions": {"updateCardDataByKey": True}})
    assert updated.json() == {"success": True, "result": True}
    [reply] = control.replies(conversation_id=sent["conversationId"])
    assert reply["user_ids"] == [alice.staff_id] and reply["conversation_type"] == "1"
    assert reply["body"]["cardData"]["cardParamMap"] == {"title": "Leave", "content": "approved"}
    assert reply["text"] == "approved"


@pytest.mark.parametrize(
    "change, code",
    [
        ({"cardData": {"cardParamMap": {"flowStatus": 1}}}, "InvalidParameter.CardData"),
        ({"openSpaceId": "IM_GROUP.cid1"}, "InvalidParameter.OpenSpaceId"),
        ({"imGroupOpenDeliverModel": {"robotCode": "other"}}, "InvalidParameter.ImGroupOpenDeliverModel"),
        ({"callbackType": "EMAIL"}, "InvalidParameter.CallbackType"),
    ],
)
def test_card_bodies_are_validated(server, control, api, change, code):
    answer = _create_and_deliver(api, "cidG", **change)
    assert answer.status_code == 400 and answer.json()["code"] == code
    assert control.replies() == [] and control.cards() == []


def test_an_out_track_id_can_be_created_only_once(server, api):
    assert _create_and_deliver(api, "cidG").status_code == 200
    assert _create_and_deliver(api, "cidG").json()["code"] == "InvalidParameter.OutTrackId"


def test_card_calls_need_a_token_and_respect_the_card_qps_limit(server, control, api):
    assert HTTP.put(f"{server.base_url}/v1.0/card/streaming", json={}).json()["code"] == "InvalidAuthentication"
    control.configure(qps_limits={"card": 1})
    assert _create_and_deliver(api, "cidG").status_code == 200
    assert _stream(api, "g", "x").status_code == 403


def test_a_tap_on_a_card_button_is_pushed_as_dingtalk_pushes_a_card_callback(server, control, api):
    import json

    from workers.dingtalk import callbacks

    sent = control.send_message("tell me a story", conversation_type="2")
    _create_and_deliver(api, sent["conversationId"])
    tapped = control._call("POST", "/sandbox/cards/track-1/callback",
                           json={"action_ids": ["stop"], "user_id": alice.staff_id})
    [push] = [p for p in control.pushes() if p["messageId"] == tapped["messageId"]]
    assert push["topic"] == "/v1.0/card/instances/callback" and push["type"] == "CALLBACK"
    data = json.loads(server.sandbox.recorder.pushes[tapped["messageId"]].data)
    assert (data["outTrackId"], data["userId"], data["spaceType"]) == ("track-1", alice.staff_id, "IM_GROUP")
    assert data["spaceId"] == sent["conversationId"]
    parsed = callbacks.parse(data)  # what the bot reads from it
    assert list(parsed.action_ids) == ["stop"] and callbacks.wants_stop(parsed)


@pytest.mark.parametrize("body, status", [
    ({"action_ids": [], "user_id": "alice"}, 400),
    ({"action_ids": ["stop"]}, 400),
    ({"action_ids": ["stop"], "user_id": "alice", "params": []}, 400),
])
def test_a_bad_tap_is_refused_with_the_reason(server, control, api, body, status):
    sent = control.send_message("tell me a story", conversation_type="2")
    _create_and_deliver(api, sent["conversationId"])
    answer = api.post("/sandbox/cards/track-1/callback", json=body)
    assert answer.status_code == status and "error" in answer.json()
    assert api.post("/sandbox/cards/no-such-card/callback", json={"action_ids": ["stop"], "user_id": "a"}
                    ).status_code == 404

