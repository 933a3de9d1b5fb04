"""The sandbox's Stream gateway speaks the real protocol: registration, tickets, pushes, ACKs, redelivery."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import websocket

from testkit.personas import alice, bob
from testkit.waits import wait_for
from tests.sandbox.stream import BOT_TOPIC, register


def _ws_url(answer: httpx.Response) -> str:
    body = answer.json()
    return f"{body['endpoint']}?ticket={body['ticket']}"


def test_registration_with_good_credentials_returns_a_ws_endpoint_and_a_ticket(server):
    answer = register(server.base_url)
    assert answer.status_code == 200
    body = answer.json()
    assert body["endpoint"] == f"ws://127.0.0.1:{server.port}/connect"
    assert len(body["ticket"]) == 36


def test_registration_with_a_bad_secret_answers_401_auth_failed(server, control):
    answer = register(server.base_url, client_secret="wrong")
    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] == "authFailed" and body["message"] == "鉴权失败" and body["requestid"]
    assert control.state()["registration_failures"] == 1


def test_registration_fails_while_the_reject_auth_fault_is_on(server, control):
    control.fault("reject_auth")
    assert register(server.base_url).status_code == 401
    control.fault("accept_auth")
    assert register(server.base_url).status_code == 200


def test_a_ticket_opens_exactly_one_connection(server):
    url = _ws_url(register(server.base_url))
    first = websocket.create_connection(url, timeout=5)
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(url, timeout=5)
    assert err.value.status_code == 401
    first.close()


def test_an_unknown_ticket_is_refused_before_the_upgrade(server):
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(f"ws://127.0.0.1:{server.port}/connect?ticket=nope", timeout=5)
    assert err.value.status_code == 401


def test_an_expired_ticket_is_refused(server, control):
    control.configure(ticket_ttl=0.05)
    url = _ws_url(register(server.base_url))
    time.sleep(0.1)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(url, timeout=5)


def test_a_private_message_push_carries_every_robot_message_field(server, control, stream):
    client = stream()
    sent = alice.send(control, "hello bot")
    frame = client.recv_topic(BOT_TOPIC)
    assert frame["specVersion"] == "1.0" and frame["type"] == "CALLBACK"
    headers = frame["headers"]
    assert headers["messageId"] == sent["messageId"]
    assert headers["contentType"] == "application/json"
    assert headers["time"].isdigit() and headers["appId"] and headers["connectionId"]
    assert isinstance(frame["data"], str)
    data = json.loads(frame["data"])
    assert data["msgId"] == sent["msgId"] and data["msgId"].startswith("msg")
    assert data["conversationType"] == "1"
    assert data["conversationId"] == sent["conversationId"] and data["conversationId"].startswith("cid")
    assert data["senderStaffId"] == alice.staff_id and data["senderNick"] == alice.nick
    assert data["senderId"].startswith("$:LWCP_v1:$")
    assert data["robotCode"] == "sandbox-client-id"
    assert data["text"] == {"content": "hello bot"}
    assert data["sessionWebhook"] == sent["sessionWebhook"]
    assert data["sessionWebhookExpiredTime"] - data["createAt"] == pytest.approx(5400_000, abs=5)
    for key in ("senderCorpId", "isAdmin", "chatbotUserId", "chatbotCorpId", "isInAtList", "atUsers"):
        assert key in data
    # The same user's private chat keeps its conversation id.
    assert alice.send(control, "again")["conversationId"] == sent["conversationId"]


def test_a_group_message_mentions_the_bot_and_keeps_the_leading_space(server, control, stream):
    client = stream()
    bob.send(control, "weather?", conversation_type="2")
    data = json.loads(client.recv_topic(BOT_TOPIC)["data"])
    assert data["conversationType"] == "2"
    assert data["conversationTitle"]
    assert data["text"]["content"] == " weather?"
    assert data["isInAtList"] is True
    assert data["atUsers"][0]["dingtalkId"] == data["chatbotUserId"]


def test_a_sender_outside_the_org_has_no_staff_id(server, control, stream):
    client = stream()
    control.send_message("hi", sender_staff_id_missing=True)
    assert "senderStaffId" not in json.loads(client.recv_topic(BOT_TOPIC)["data"])


def test_non_text_messages_pass_their_content_through(server, control, stream):
    client = stream()
    content = {"downloadCode": "dc1", "pictureDownloadCode": "pdc1"}
    control.send_message(msgtype="picture", content=content)
    data = json.loads(client.recv_topic(BOT_TOPIC)["data"])
    assert data["msgtype"] == "picture" and data["content"] == content and "text" not in data


def test_an_acked_push_is_not_redelivered(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.2, redeliver_jitter=0)
    client = stream()
    sent = control.send_message("once")
    client.ack(client.recv_topic(BOT_TOPIC))
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.recv_topic(BOT_TOPIC, timeout=0.6)
    [ack] = control.acks()
    assert ack["messageId"] == sent["messageId"] and ack["msgId"] == sent["msgId"]
    assert ack["code"] == 200 and json.loads(ack["data"]) == {"response": None}
    state = control.state()
    assert state["acked"] == 1 and state["unacked"] == 0 and state["redelivered"] == 0


def test_an_unacked_push_is_redelivered_with_the_same_ids(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.2, redeliver_jitter=0)
    client = stream()
    control.send_message("late ack")
    first = client.recv_topic(BOT_TOPIC)
    again = client.recv_topic(BOT_TOPIC, timeout=2)
    assert again["headers"]["messageId"] == first["headers"]["messageId"]
    assert json.loads(again["data"])["msgId"] == json.loads(first["data"])["msgId"]
    client.ack(again)
    wait_for(lambda: control.pushes()[0]["acked"], what="the ACK")
    [push] = control.pushes()
    assert push["count"] == 2 and push["acked"] is True
    assert control.state()["redelivered"] == 1


def test_an_error_ack_does_not_stop_redelivery(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.2, redeliver_jitter=0)
    client = stream()
    control.send_message("fails")
    client.ack(client.recv_topic(BOT_TOPIC), code=500)
    assert client.recv_topic(BOT_TOPIC, timeout=2)
    assert control.acks()[0]["code"] == 500


def test_redelivery_gives_up_after_max_redeliveries(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.1, redeliver_jitter=0, max_redeliveries=2)
    client = stream()
    control.send_message("never acked")
    frames = [client.recv_topic(BOT_TOPIC, timeout=2) for _ in range(3)]
    assert len({f["headers"]["messageId"] for f in frames}) == 1
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.recv_topic(BOT_TOPIC, timeout=0.4)
    assert control.pushes()[0]["abandoned"] is True


def test_pushes_made_without_a_connection_wait_for_one(server, control, stream):
    sent = control.send_message("while offline")
    assert control.state()["queued"] == 1
    client = stream()
    frame = client.recv_topic(BOT_TOPIC)
    assert frame["headers"]["messageId"] == sent["messageId"]


def test_pushes_without_a_connection_are_lost_when_queueing_is_off(server, control, stream):
    control.configure(queue_when_disconnected=False)
    control.send_message("lost")
    client = stream()
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.recv_topic(BOT_TOPIC, timeout=0.3)
    assert control.state()["dropped"] == 1


def test_each_push_goes_to_one_connection_chosen_at_random(server, control, stream):
    clients = [stream(), stream()]
    control.send_batch([{"text": f"m{i}"} for i in range(40)])
    pushes = control.pushes()
    per_connection = {c: 0 for p in pushes for c in p["connectionIds"]}
    for push in pushes:
        assert len(push["connectionIds"]) == 1
        per_connection[push["connectionIds"][0]] += 1
    assert len(per_connection) == 2 and min(per_connection.values()) >= 5
    got = 0
    for client in clients:
        try:
            while True:
                client.recv_topic(BOT_TOPIC, timeout=0.3)
                got += 1
        except websocket.WebSocketTimeoutException:
            pass
    assert got == 40


def test_a_connection_without_the_bot_subscription_gets_no_robot_messages(server, control, stream):
    client = stream(subscriptions=[{"type": "EVENT", "topic": "*"}])
    control.send_message("not for you")
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.recv_topic(BOT_TOPIC, timeout=0.3)
    assert control.state()["queued"] == 1


def test_events_and_card_callbacks_can_be_pushed_too(server, control, stream):
    client = stream(subscriptions=[{"type": "EVENT", "topic": "*"},
                                   {"type": "CALLBACK", "topic": "/v1.0/card/instances/callback"}])
    control.push("/v1.0/card/instances/callback", {"outTrackId": "t1", "type": "actionCallback"})
    frame = client.recv_topic("/v1.0/card/instances/callback")
    assert json.loads(frame["data"])["outTrackId"] == "t1"
    control.push("*", {"k": 1}, frame_type="EVENT", headers={"eventType": "user_add_org"})
    event = client.recv_topic("*")
    assert event["type"] == "EVENT" and event["headers"]["eventType"] == "user_add_org"
    assert control.push("KEEPALIVE", {}, frame_type="SYSTEM") == {"sent": 1}  # no subscription needed
    assert client.recv_topic("KEEPALIVE")["type"] == "SYSTEM"
