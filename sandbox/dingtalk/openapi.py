"""OpenAPI endpoints the bot calls: access token, sessionWebhook, robot sends, file download."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from sandbox.dingtalk.bodies import msgtype_of_key, plain_text, validate_msg_param, validate_webhook_body
from sandbox.dingtalk.context import SANDBOX_KEY, Sandbox
from sandbox.dingtalk.messages import private_conversation_id

TOKEN_HEADER = "x-acs-dingtalk-access-token"
MAX_BATCH_USERS = 20


def api_error(status: int, code: str, message: str) -> web.Response:
    body = {"code": code, "message": message, "requestid": uuid.uuid4().hex.upper()}
    return web.json_response(body, status=status)


def qps_error(family: str) -> web.Response:
    return api_error(
        403,
        "Forbidden.AccessDenied.QpsLimitForApi",
        f"调用该接口触发了限流 (sandbox QPS limit for {family})",
    )


def send_failure(sb: Sandbox) -> web.Response | None:
    """The answer while the `fail_sends` fault is on: a server error, nothing recorded."""
    if not sb.failing_sends:
        return None
    return api_error(sb.failing_sends, "ServiceUnavailable", "sandbox fault: sends are failing")


def webhook_answer(errcode: int, errmsg: str) -> web.Response:
    # sessionWebhook errors still come back as HTTP 200: callers must read errcode.
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


async def read_json(request: web.Request) -> Any:
    """The parsed body, or raises ValueError (form bodies and bad JSON alike)."""
    text = await request.text()
    return json.loads(text)


def check_token(sb: Sandbox, request: web.Request, family: str) -> web.Response | None:
    """The error response when the call is not authorised or is over its QPS budget."""
    if not sb.token_valid(request.headers.get(TOKEN_HEADER)):
        return api_error(400, "InvalidAuthentication", "不合法的access_token")
    if not sb.allow(family):
        return qps_error(family)
    return None


async def authorized_body(request: web.Request, family: str) -> tuple[Sandbox, Any] | web.Response:
    """The sandbox and the JSON body of an OpenAPI call with a valid token, or the error answer."""
    sb = request.app[SANDBOX_KEY]
    denied = check_token(sb, request, family)
    if denied:
        return denied
    try:
        return sb, await read_json(request)
    except ValueError:
        return api_error(400, "InvalidParameter", "body is not JSON")


def user_conversation(sb: Sandbox, user_id: str) -> str:
    return sb.private_cids.get(user_id) or private_conversation_id(sb.config.client_id, user_id)


async def access_token(request: web.Request) -> web.Response:
    """POST /v1.0/oauth2/accessToken."""
    sb = request.app[SANDBOX_KEY]
    if not sb.allow("token"):
        return qps_error("token")
    try:
        body = await read_json(request)
    except ValueError:
        return api_error(400, "MissingappKey", "appKey is mandatory for this action (JSON body required)")
    if not isinstance(body, dict) or (
        body.get("appKey") != sb.config.client_id or body.get("appSecret") != sb.config.client_secret
    ):
        return api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
    sb.recorder.token_fetches += 1
    return web.json_response({"accessToken": sb.issue_token(), "expireIn": int(sb.config.token_ttl)})


async def send_by_session(request: web.Request) -> web.Response:
    """POST /robot/sendBySession?session=... — the sessionWebhook of one pushed message."""
    sb = request.app[SANDBOX_KEY]
    session = sb.live_session(request.query.get("session", ""))
    if session is None:
        return webhook_answer(300001, "session 不存在")
    failure = send_failure(sb)
    if failure:
        return failure
    if not sb.allow("webhook"):
        return webhook_answer(130101, "send too fast, exceed 20 times per minute")
    try:
        body = await read_json(request)
    except ValueError:
        return webhook_answer(40035, "缺少参数 json")
    problem = validate_webhook_body(body)
    if problem:
        return webhook_answer(40035, problem)
    msgtype = body["msgtype"]
    at_ids = (body.get("at") or {}).get("atUserIds") or []
    user_ids = [session.user_id] if session.conversation_type == "1" else list(at_ids)
    sb.recorder.add_reply(
        {
            "via": "webhook",
            "msg_id": session.msg_id,
            "conversation_id": session.conversation_id,
            "conversation_type": session.conversation_type,
            "user_ids": user_ids,
            "msgtype": msgtype,
            "body": body,
            "text": plain_text(msgtype, body.get(msgtype)),
        }
    )
    return webhook_answer(0, "ok")


def _check_robot_send(sb: Sandbox, body: Any) -> web.Response | None:
    if not isinstance(body, dict):
        return api_error(400, "InvalidParameter", "body must be a JSON object")
    if body.get("robotCode") != sb.config.client_id:
        return api_error(400, "InvalidParameter.RobotCode", f"robotCode {body.get('robotCode')!r} 不存在")
    problem = validate_msg_param(body.get("msgKey"), body.get("msgParam"))
    if problem:
        return api_error(400, *problem)
    return None


async def _robot_send_body(request: web.Request) -> tuple[Sandbox, Any] | web.Response:
    """Token, JSON and the fields both robot send APIs share (robotCode, msgKey, msgParam)."""
    checked = await authorized_body(request, "robot_send")
    if isinstance(checked, web.Response):
        return checked
    invalid = _check_robot_send(*checked) or send_failure(checked[0])
    return invalid if invalid else checked


async def batch_send(request: web.Request) -> web.Response:
    """POST /v1.0/robot/oToMessages/batchSend — 1:1 messages to up to 20 users."""
    checked = await _robot_send_body(request)
    if isinstance(checked, web.Response):
        return checked
    sb, body = checked
    user_ids = body.get("userIds")
    if (
        not isinstance(user_ids, list)
        or not user_ids
        or not all(isinstance(u, str) and u for u in user_ids)
    ):
        return api_error(400, "InvalidParameter.UserIds", "userIds must be a non-empty list of userIds")
    if len(user_ids) > MAX_BATCH_USERS:
        return api_error(400, "InvalidParameter.UserIds", f"userIds exceeds {MAX_BATCH_USERS}")
    cids = [user_conversation(sb, u) for u in user_ids]
    msg_key, param = body["msgKey"], json.loads(body["msgParam"])
    sb.recorder.add_reply(
        {
            "via": "batchSend",
            "msg_id": None,
            "conversation_id": cids[0] if len(cids) == 1 else None,
            "conversation_ids": cids,
            "conversation_type": "1",
            "user_ids": list(user_ids),
            "msgtype": msgtype_of_key(msg_key),
            "msg_key": msg_key,
            "body": body,
            "param": param,
            "text": plain_text(msg_key, param),
        }
    )
    return web.json_response(
        {
            "processQueryKey": uuid.uuid4().hex,
            "invalidStaffIdList": [],
            "flowControlledStaffIdList": [],
            "filteredStaffIdList": [],
        }
    )


async def group_send(request: web.Request) -> web.Response:
    """POST /v1.0/robot/groupMessages/send — one message to a group the robot is in."""
    checked = await _robot_send_body(request)
    if isinstance(checked, web.Response):
        return checked
    sb, body = checked
    cid = body.get("openConversationId")
    if not isinstance(cid, str) or not cid:
        return api_error(400, "InvalidParameter.OpenConversationId", "openConversationId is required")
    if sb.conversations.get(cid) == "1":
        # A common fallback bug: a private chat's id sent to the group API.
        return api_error(400, "InvalidParameter.OpenConversationId", f"{cid} 不是群会话")
    msg_key, param = body["msgKey"], json.loads(body["msgParam"])
    sb.recorder.add_reply(
        {
            "via": "groupSend",
            "msg_id": None,
            "conversation_id": cid,
            "conversation_type": "2",
            "user_ids": [],
            "msgtype": msgtype_of_key(msg_key),
            "msg_key": msg_key,
            "body": body,
            "param": param,
            "text": plain_text(msg_key, param),
        }
    )
    return web.json_response({"processQueryKey": uuid.uuid4().hex})


async def download_file(request: web.Request) -> web.Response:
    """POST /v1.0/robot/messageFiles/download → a temporary URL served by the sandbox."""
    checked = await authorized_body(request, "files")
    if isinstance(checked, web.Response):
        return checked
    sb, body = checked
    if not isinstance(body, dict) or body.get("robotCode") != sb.config.client_id:
        return api_error(400, "InvalidParameter.RobotCode", "robotCode 不存在")
    code = body.get("downloadCode")
    if not isinstance(code, str) or code not in sb.files:
        return api_error(400, "InvalidParameter.DownloadCode", f"downloadCode {code!r} 不存在或已过期")
    base = sb.base_url or f"http://{request.host}"
    return web.json_response({"downloadUrl": f"{base}/sandbox/files/{code}"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1.0/oauth2/accessToken", access_token)
    app.router.add_post("/robot/sendBySession", send_by_session)
    app.router.add_post("/v1.0/robot/oToMessages/batchSend", batch_send)
    app.router.add_post("/v1.0/robot/groupMessages/send", group_send)
    app.router.add_post("/v1.0/robot/messageFiles/download", download_file)
