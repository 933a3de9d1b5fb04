"""The Alertmanager → DingTalk bridge against the sandbox's custom robot: Alertmanager's documented
webhook payload in, one signed markdown message out; bad calls refused, robot refusals passed on so
Alertmanager retries what can pass later."""

from __future__ import annotations

import json

import pytest

from webapp.alerting import format_message

TOKEN = "alert-token-for-tests"
SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


def payload(status: str = "firing", alerts: int = 1) -> dict:
    """Alertmanager's webhook body (version 4), as its documentation shows it."""
    return {
        "version": "4", "groupKey": '{}:{alertname="AIProcessingP99Over2s"}', "truncatedAlerts": 0,
        "status": status, "receiver": "dingtalk-ops",
        "groupLabels": {"alertname": "AIProcessingP99Over2s"},
        "commonLabels": {"alertname": "AIProcessingP99Over2s", "severity": "critical"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "AIProcessingP99Over2s", "severity": "critical", "skill": f"skill{i}",
                       "channel": "card"},
            "annotations": {"summary": f"P99 from receipt to reply above 2 s (skill{i} via card: 4.99s)"},
            "startsAt": "2026-01-05T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{i:016x}",
        } for i in range(alerts)],
    }


@pytest.fixture
def bridge(resources, sandbox_client):
    """The bridge configured for a signed sandbox robot; returns (post, robot)."""
    from django.test import Client

    robot = sandbox_client.add_robot(secret=SECRET)
    resources.set(ALERT_WEBHOOK_TOKEN=TOKEN, OPS_DINGTALK_ROBOT_WEBHOOK=robot["webhook"],
                  OPS_DINGTALK_ROBOT_SECRET=SECRET)
    client = Client()

    def post(body: object, token: str = TOKEN):
        data = body if isinstance(body, str) else json.dumps(body)
        return client.post("/ops/alerts", data=data, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"} if token else {})

    return post, robot


def robot_messages(sandbox_client, robot) -> list[dict]:
    return [r for r in sandbox_client.replies(via="robot") if r["robot"] == robot["access_token"]]


def test_a_firing_alert_reaches_the_ops_group_signed_as_markdown(bridge, sandbox_client):
    post, robot = bridge
    response = post(payload())
    assert response.status_code == 200, response.content
    [message] = robot_messages(sandbox_client, robot)
    assert message["msgtype"] == "markdown" and message["title"] == "[FIRING:1] AIProcessingP99Over2s"
    assert "🔴 **AIProcessingP99Over2s** P99 from receipt to reply above 2 s" in message["text"]
    assert "skill=skill0" in message["text"] and "http://alertmanager:9093" in message["text"]
    post(payload(status="resolved"))
    assert robot_messages(sandbox_client, robot)[-1]["title"] == "[RESOLVED] AIProcessingP99Over2s"


def test_calls_without_the_token_or_with_a_bad_body_are_refused(bridge, sandbox_client):
    post, robot = bridge
    assert post(payload(), token="").status_code == 401
    assert post(payload(), token="wrong").status_code == 401
    assert post("{not json").status_code == 400
    assert post({"status": "firing"}).status_code == 400
    assert robot_messages(sandbox_client, robot) == []


def test_a_robot_with_another_secret_refuses_the_sign_and_alertmanager_is_told(bridge, resources, sandbox_client):
    post, robot = bridge
    resources.set(OPS_DINGTALK_ROBOT_SECRET="SECnot-the-robots-secret")
    response = post(payload())
    assert response.status_code == 502  # retrying cannot fix a wrong secret
    assert "310000" in response.json()["error"]
    assert robot_messages(sandbox_client, robot) == []


def test_over_twenty_messages_a_minute_the_robot_limits_and_alertmanager_retries_later(bridge, sandbox_client):
    post, robot = bridge
    assert [post(payload()).status_code for _ in range(20)] == [200] * 20
    limited = post(payload())
    assert limited.status_code == 503 and "410100" in limited.json()["error"]
    assert len(robot_messages(sandbox_client, robot)) == 20


def test_without_a_robot_configured_the_bridge_says_so(resources):
    from django.test import Client

    resources.set(ALERT_WEBHOOK_TOKEN=TOKEN, OPS_DINGTALK_ROBOT_WEBHOOK="")
    response = Client().post("/ops/alerts", data=json.dumps(payload()), content_type="application/json",
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503 and "OPS_DINGTALK_ROBOT_WEBHOOK" in response.json()["error"]


def test_a_big_group_is_cut_to_one_readable_message():
    title, text = format_message(payload(alerts=25))
    assert title == "[FIRING:25] AIProcessingP99Over2s"
    assert text.count("\n- ") == 11 and "… and 15 more" in text
