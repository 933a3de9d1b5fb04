"""The sandbox's OpenAPI: sessionWebhook replies, access token, robot sends, QPS limits, file download."""

from __future__ import annotations

import json

import pytest

from sandbox.client import SandboxError, http_client
from testkit.personas import alice
from tests.sandbox.stream import HTTP

TOKEN_HEADER = "x-acs-dingtalk-access-token"


@pytest.fixture
def http(server):
    with http_client(base_url=server.base_url, timeout=5) as client:
        yield client


@pytest.fixture
def token(http) -> str:
    answer = http.post(
        "/v1.0/oauth2/accessToken",
        json={"appKey": "sandbox-client-id", "appSecret": "sandbox-client-secret"},
    )
    assert answer.status_code == 200
    return answer.json()["accessToken"]


def _text_param(text: str) -> str:
    return json.dumps({"content": text})


# ---- sessionWebhook ---------------------------------------------------------------------------


def test_a_webhook_reply_is_recorded_and_attributed_to_its_message(server, control, http):
    sent = alice.send(control, "ping?")
    body = {"msgtype": "text", "text": {"content": "pong"}, "at": {"atUserIds": [alice.staff_id]}}
    answer = http.post(sent["sessionWebhook"], json=body)
    assert answer.status_code == 200 and answer.json() == {"errcode": 0, "errmsg": "ok"}
    [reply] = control.replies(msg_id=sent["msgId"])
    assert reply["via"] == "webhook" and reply["msg_id"] == sent["msgId"]
    assert reply["conversation_id"] == sent["conversationId"] and reply["conversation_type"] == "1"
    assert reply["user_ids"] == [alice.staff_id] and reply["msgtype"] == "text"
    assert reply["body"] == body and reply["text"] == "pong"
    assert reply["id"] == 1 and reply["at"] > 0


def test_markdown_action_card_and_link_replies_are_accepted(server, control, http):
    sent = control.send_message("show me")
    bodies = [
        {"msgtype": "markdown", "markdown": {"title": "T", "text": "# Hi"}},
        {"msgtype": "actionCard", "actionCard": {"title": "T", "text": "x", "singleTitle": "Go", "singleURL": "http://a"}},
        {"msgtype": "actionCard", "actionCard": {"title": "T", "text": "x", "btns": [{"title": "A", "actionURL": "http://a"}]}},
        {"msgtype": "link", "link": {"title": "T", "text": "x", "messageUrl": "http://a", "picUrl": ""}},
    ]
    for body in bodies:
        assert http.post(sent["sessionWebhook"], json=body).json()["errcode"] == 0
    replies = control.replies(conversation_id=sent["conversationId"])
    assert [r["msgtype"] for r in replies] == ["markdown", "actionCard", "actionCard", "link"]
    assert replies[0]["text"] == "# Hi"
    assert [r["id"] for r in control.replies(since_id=replies[1]["id"])] == [3, 4]


@pytest.mark.parametrize(
    "body",
    [
        {"msgtype": "sticker", "sticker": {}},
        {"msgtype": "text", "text": {}},
        {"msgtype": "markdown", "markdown": {"title": "no text"}},
        {"msgtype": "actionCard", "actionCard": {"title": "T", "text": "no button"}},
        {"text": {"content": "no msgtype"}},
    ],
)
def test_a_malformed_webhook_body_is_refused_with_errcode_40035(server, control, http, body):
    sent = control.send_message("x")
    answer = http.post(sent["sessionWebhook"], json=body)
    assert answer.status_code == 200 and answer.json()["errcode"] == 40035
    assert control.replies() == []


def test_a_webhook_body_that_is_not_json_is_refused(server, control, http):
    sent = control.send_message("x")
    answer = http.post(sent["sessionWebhook"], content=b"content=hi")
    assert answer.json()["errcode"] == 40035


def test_an_expired_webhook_answers_300001_with_http_200(server, control, http):
    sent = control.send_message("x")
    assert control.fault("expire_webhooks")["affected"] == 1
    answer = http.post(sent["sessionWebhook"], json={"msgtype": "text", "text": {"content": "late"}})
    assert answer.status_code == 200
    assert answer.json() == {"errcode": 300001, "errmsg": "session 不存在"}
    assert control.replies() == []


def test_a_webhook_with_a_short_ttl_expires_by_itself(server, control, http):
    import time

    sent = control.send_message("x", webhook_ttl=0.05)
    time.sleep(0.1)
    body = {"msgtype": "text", "text": {"content": "late"}}
    assert http.post(sent["sessionWebhook"], json=body).json()["errcode"] == 300001


def test_an_unknown_session_answers_300001(server, http):
    answer = http.post("/robot/sendBySession?session=deadbeef", json={"msgtype": "text", "text": {"content": "x"}})
    assert answer.json()["errcode"] == 300001


def test_webhook_replies_over_the_qps_limit_get_errcode_130101(server, control, http):
    control.configure(qps_limits={"webhook": 3})
    sent = control.send_message("x")
    body = {"msgtype": "text", "text": {"content": "spam"}}
    codes = [http.post(sent["sessionWebhook"], json=body).json()["errcode"] for _ in range(5)]
    assert codes == [0, 0, 0, 130101, 130101]
    assert len(control.replies()) == 3 and control.state()["throttled"] == 2


# ---- access token -----------------------------------------------------------------------------


def test_the_token_endpoint_returns_the_same_token_while_it_is_valid(server, control, http, token):
    again = http.post(
        "/v1.0/oauth2/accessToken",
        json={"appKey": "sandbox-client-id", "appSecret": "sandbox-client-secret"},
    ).json()
    assert again == {"accessToken": token, "expireIn": 7200}
    assert control.state()["token_fetches"] == 2


def test_the_token_endpoint_refuses_bad_credentials_with_400(server, http):
    answer = http.post("/v1.0/oauth2/accessToken", json={"appKey": "sandbox-client-id", "appSecret": "x"})
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalidClientIdOrSecret"
    assert answer.json()["message"] == "无效的clientId或者clientSecret"


def test_the_token_endpoint_refuses_a_form_body(server, http):
    answer = http.post(
        "/v1.0/oauth2/accessToken",
        data={"appKey": "sandbox-client-id", "appSecret": "sandbox-client-secret"},
    )
    assert answer.status_code == 400


def test_expired_tokens_are_refused_until_a_new_one_is_fetched(server, control, http, token):
    control.fault("expire_tokens")
    answer = http.post(
        "/v1.0/robot/groupMessages/send",
        headers={TOKEN_HEADER: token},
        json={"robotCode": "sandbox-client-id", "openConversationId": "cidX", "msgKey": "sampleText", "msgParam": _text_param("x")},
    )
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidAuthentication"


# ---- robot sends ------------------------------------------------------------------------------


def test_batch_send_records_a_reply_in_the_users_private_conversation(server, control, http, token):
    sent = alice.send(control, "hello")
    body = {"robotCode": "sandbox-client-id", "userIds": [alice.staff_id], "msgKey": "sampleMarkdown",
            "msgParam": json.dumps({"title": "T", "text": "**hi**"})}
    answer = http.post("/v1.0/robot/oToMessages/batchSend", headers={TOKEN_HEADER: token}, json=body)
    assert answer.status_code == 200
    assert set(answer.json()) == {"processQueryKey", "invalidStaffIdList", "flowControlledStaffIdList", "filteredStaffIdList"}
    [reply] = control.replies(conversation_id=sent["conversationId"])
    assert reply["via"] == "batchSend" and reply["msg_id"] is None
    assert reply["user_ids"] == [alice.staff_id] and reply["msgtype"] == "markdown" and reply["text"] == "**hi**"
    assert reply["conversation_type"] == "1" and reply["body"] == body


def test_group_send_records_a_reply_in_the_group(server, control, http, token):
    sent = control.send_message("hello", conversation_type="2")
    body = {"robotCode": "sandbox-client-id", "openConversationId": sent["conversationId"],
            "msgKey": "sampleText", "msgParam": _text_param("hi all")}
    answer = http.post("/v1.0/robot/groupMessages/send", headers={TOKEN_HEADER: token}, json=body)
    assert answer.status_code == 200 and "processQueryKey" in answer.json()
    [reply] = control.replies(conversation_id=sent["conversationId"])
    assert reply["via"] == "groupSend" and reply["conversation_type"] == "2" and reply["text"] == "hi all"


@pytest.mark.parametrize("path", ["/v1.0/robot/oToMessages/batchSend", "/v1.0/robot/groupMessages/send"])
@pytest.mark.parametrize("headers", [{}, {TOKEN_HEADER: "forged"}])
def test_robot_sends_without_a_valid_token_are_refused(server, http, path, headers):
    answer = http.post(path, headers=headers, json={})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "InvalidAuthentication" and body["message"] == "不合法的access_token"
    assert body["requestid"]


@pytest.mark.parametrize(
    "change, code",
    [
        ({"robotCode": "someone-else"}, "InvalidParameter.RobotCode"),
        ({"msgKey": "sampleHologram"}, "InvalidParameter.MsgKey"),
        ({"msgParam": {"content": "an object, not a string"}}, "InvalidParameter.MsgParam"),
        ({"msgParam": "{not json"}, "InvalidParameter.MsgParam"),
        ({"msgParam": json.dumps({"title": "missing content"})}, "InvalidParameter.MsgParam"),
        ({"msgParam": json.dumps({"content": "x" * 15001})}, "InvalidParameter.MsgParamTooLarge"),
        ({"userIds": [f"u{i}" for i in range(21)]}, "InvalidParameter.UserIds"),
        ({"userIds": []}, "InvalidParameter.UserIds"),
    ],
)
def test_batch_send_validates_its_body(server, control, http, token, change, code):
    body = {"robotCode": "sandbox-client-id", "userIds": [alice.staff_id], "msgKey": "sampleText",
            "msgParam": _text_param("x")}
    answer = http.post("/v1.0/robot/oToMessages/batchSend", headers={TOKEN_HEADER: token}, json={**body, **change})
    assert answer.status_code == 400 and answer.json()["code"] == code
    assert control.replies() == []


def test_group_send_refuses_a_private_conversation(server, control, http, token):
    sent = control.send_message("private")
    body = {"robotCode": "sandbox-client-id", "openConversationId": sent["conversationId"],
            "msgKey": "sampleText", "msgParam": _text_param("x")}
    answer = http.post("/v1.0/robot/groupMessages/send", headers={TOKEN_HEADER: token}, json=body)
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter.OpenConversationId"


def test_robot_sends_over_the_qps_limit_get_403(server, control, http, token):
    control.configure(qps_limits={"robot_send": 2})
    body = {"robotCode": "sandbox-client-id", "userIds": [alice.staff_id], "msgKey": "sampleText",
            "msgParam": _text_param("x")}
    statuses = [
        http.post("/v1.0/robot/oToMessages/batchSend", headers={TOKEN_HEADER: token}, json=body)
        for _ in range(3)
    ]
    assert [s.status_code for s in statuses] == [200, 200, 403]
    assert statuses[2].json()["code"] == "Forbidden.AccessDenied.QpsLimitForApi"


def test_while_sends_fail_every_reply_gets_the_5xx_and_nothing_is_recorded_until_healed(
        server, control, http, token):
    sent = alice.send(control, "x")
    webhook = {"msgtype": "text", "text": {"content": "hi"}}
    robot = {"robotCode": "sandbox-client-id", "userIds": [alice.staff_id], "msgKey": "sampleText",
             "msgParam": _text_param("x")}
    control.fault("fail_sends", status=502)
    assert control.state()["failing_sends"] == 502
    for _ in range(2):  # persistent, not one-shot
        answer = http.post(sent["sessionWebhook"], json=webhook)
        assert answer.status_code == 502 and answer.json()["code"] == "ServiceUnavailable"
        answer = http.post("/v1.0/robot/oToMessages/batchSend", headers={TOKEN_HEADER: token}, json=robot)
        assert answer.status_code == 502
    assert control.replies() == []
    control.fault("heal_sends")
    assert http.post(sent["sessionWebhook"], json=webhook).json()["errcode"] == 0
    assert http.post("/v1.0/robot/oToMessages/batchSend", headers={TOKEN_HEADER: token}, json=robot).status_code == 200
    assert len(control.replies()) == 2


def test_fail_sends_takes_only_a_5xx_and_a_config_reset_heals(server, control):
    with pytest.raises(SandboxError):
        control.fault("fail_sends", status=404)
    control.fault("fail_sends")
    assert control.state()["failing_sends"] == 503
    control.reset(config=True)
    assert control.state()["failing_sends"] == 0


# ---- files ------------------------------------------------------------------------------------


def test_a_registered_file_is_downloadable_through_its_download_code(server, control, http, token):
    control.add_file("code-1", b"%PDF-1.4 test", content_type="application/pdf", filename="a.pdf")
    answer = http.post("/v1.0/robot/messageFiles/download", headers={TOKEN_HEADER: token},
                       json={"downloadCode": "code-1", "robotCode": "sandbox-client-id"})
    assert answer.status_code == 200
    url = answer.json()["downloadUrl"]
    assert url == f"{server.base_url}/sandbox/files/code-1"
    fetched = HTTP.get(url)
    assert fetched.content == b"%PDF-1.4 test" and fetched.headers["content-type"] == "application/pdf"


def test_an_unknown_download_code_is_refused(server, http, token):
    answer = http.post("/v1.0/robot/messageFiles/download", headers={TOKEN_HEADER: token},
                       json={"downloadCode": "nope", "robotCode": "sandbox-client-id"})
    assert answer.status_code == 400 and answer.json()["code"] == "InvalidParameter.DownloadCode"
