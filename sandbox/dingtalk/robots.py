"""Custom group robots (自定义机器人): POST /robot/send?access_token=… as DingTalk serves it, with the 加签
check (timestamp + HMAC-SHA256 sign), its 20-messages-a-minute limit and its errcodes; what arrives is
recorded as a reply `via="robot"`. Tests register a robot with POST /sandbox/robots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from sandbox.dingtalk.bodies import plain_text, validate_webhook_body
from sandbox.dingtalk.context import SANDBOX_KEY
from sandbox.dingtalk.openapi import read_json, webhook_answer

# DingTalk's documented limits: 20 messages a minute per robot; a signed timestamp at most an hour off.
PER_MINUTE = 20
SIGN_WINDOW_MS = 3600 * 1000


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` parameter's value: base64(HMAC-SHA256(secret, "timestamp\\nsecret")) (URL-encoded on the wire)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Robot:
    access_token: str
    secret: str = ""  # empty: the robot has no 加签 security setting
    sent: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        while self.sent and now - self.sent[0] >= 60.0:
            self.sent.popleft()
        if len(self.sent) >= PER_MINUTE:
            return False
        self.sent.append(now)
        return True


ROBOTS_KEY: web.AppKey[dict[str, Robot]] = web.AppKey("robots", dict)


def _signature_problem(robot: Robot, query: Any, now: float) -> str:
    if not robot.secret:
        return ""
    timestamp, given = str(query.get("timestamp") or ""), str(query.get("sign") or "")
    if not timestamp.isdigit() or not given:
        return "sign not match, missing timestamp or sign"
    if abs(now * 1000 - int(timestamp)) > SIGN_WINDOW_MS:
        return "sign not match, timestamp is more than 1 hour off"
    if not hmac.compare_digest(given, sign(robot.secret, int(timestamp))):
        return "sign not match"
    return ""


async def robot_send(request: web.Request) -> web.Response:
    """POST /robot/send?access_token=…[&timestamp=…&sign=…]; errors come back as HTTP 200 with errcode."""
    sb = request.app[SANDBOX_KEY]
    robot = request.app[ROBOTS_KEY].get(request.query.get("access_token", ""))
    if robot is None:
        return webhook_answer(300001, "token is not exist")
    now = time.time()
    problem = _signature_problem(robot, request.query, now)
    if problem:
        return webhook_answer(310000, problem)
    failure = sb.failing_sends
    if failure:
        return webhook_answer(-1, "系统繁忙 (sandbox fault: sends are failing)")
    try:
        body = await read_json(request)
    except ValueError:
        return webhook_answer(40035, "缺少参数 json")
    # The custom robot takes the same message bodies as a sessionWebhook (text, markdown, link, ...).
    invalid = validate_webhook_body(body)
    if invalid:
        return webhook_answer(40035, invalid)
    if not robot.allow(now):
        return webhook_answer(410100, "send too fast, exceed 20 times per minute")
    msgtype = body["msgtype"]
    content = body[msgtype]
    sb.recorder.add_reply({
        "via": "robot", "robot": robot.access_token, "msgtype": msgtype, "body": body,
        "title": str(content.get("title") or ""), "text": plain_text(msgtype, content),
    })
    return webhook_answer(0, "ok")


async def add_robot(request: web.Request) -> web.Response:
    """POST /sandbox/robots {"secret"?: str, "access_token"?: str} → the robot's webhook URL and secret."""
    try:
        body = await read_json(request) if request.can_read_body else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return web.json_response({"error": 'body must be {"secret"?, "access_token"?}'}, status=400)
    robot = Robot(access_token=str(body.get("access_token") or os.urandom(12).hex()),
                  secret=str(body.get("secret") or ""))
    request.app[ROBOTS_KEY][robot.access_token] = robot
    base = request.app[SANDBOX_KEY].base_url
    return web.json_response({"webhook": f"{base}/robot/send?access_token={robot.access_token}",
                              "access_token": robot.access_token, "secret": robot.secret})


def add_routes(app: web.Application) -> None:
    app[ROBOTS_KEY] = {}
    app.router.add_post("/robot/send", robot_send)
    app.router.add_post("/sandbox/robots", add_robot)
