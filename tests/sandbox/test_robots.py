"""The sandbox's custom group robot: DingTalk's 加签 check, its errcodes and its per-minute limit."""

from __future__ import annotations

import time

import httpx

from sandbox.dingtalk.robots import PER_MINUTE, sign

MARKDOWN = {"msgtype": "markdown", "markdown": {"title": "t", "text": "### hello"}}


def send(robot: dict, body: dict = MARKDOWN, **params: str) -> dict:
    url = httpx.URL(robot["webhook"]).copy_merge_params(params)
    response = httpx.post(url, json=body, timeout=5)
    assert response.status_code == 200  # errors are errcodes, as DingTalk answers
    return response.json()


def test_a_signed_robot_takes_only_a_fresh_correct_sign(sandbox_client):
    robot = sandbox_client.add_robot(secret="SECabc")
    now = int(time.time() * 1000)
    assert send(robot)["errcode"] == 310000  # no sign at all
    assert send(robot, timestamp=str(now), sign=sign("SECother", now))["errcode"] == 310000
    stale = now - 2 * 3600 * 1000
    assert send(robot, timestamp=str(stale), sign=sign("SECabc", stale))["errcode"] == 310000
    assert send(robot, timestamp=str(now), sign=sign("SECabc", now)) == {"errcode": 0, "errmsg": "ok"}
    [message] = sandbox_client.replies(via="robot")
    assert message["title"] == "t" and message["text"] == "### hello"


def test_unknown_tokens_bad_bodies_and_the_twenty_a_minute_limit(sandbox_client):
    robot = sandbox_client.add_robot()
    assert send(dict(robot, webhook=robot["webhook"] + "x"))["errcode"] == 300001
    assert send(robot, {"msgtype": "markdown", "markdown": {"title": "no text"}})["errcode"] == 40035
    assert send(robot, {"msgtype": "nope"})["errcode"] == 40035
    assert [send(robot)["errcode"] for _ in range(PER_MINUTE + 1)] == [0] * PER_MINUTE + [410100]
    assert len(sandbox_client.replies(via="robot")) == PER_MINUTE
