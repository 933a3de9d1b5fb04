"""The /sandbox/* control API: inject messages and frames, read what the bot did, set faults and config."""

from __future__ import annotations

import base64
import time
from typing import Any

from aiohttp import web

from sandbox.dingtalk.context import SANDBOX_KEY, Sandbox, StoredFile
from sandbox.dingtalk.messages import Injection, new_msg_id, robot_message


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _json(request: web.Request) -> Any:
    try:
        return await request.json() if request.can_read_body else {}
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=f'{{"error": "body is not JSON: {exc}"}}', content_type="application/json"
        ) from exc


def base_url(sb: Sandbox, request: web.Request) -> str:
    return sb.base_url or f"http://{request.host}"


def inject(sb: Sandbox, inj: Injection, base: str) -> dict[str, str]:
    """Turn one injection into a robot-message push; returns the ids a test needs."""
    client_id = sb.config.client_id
    conversation_id = inj.resolve_conversation_id(client_id)
    msg_id = inj.msg_id or new_msg_id()
    ttl = sb.config.webhook_ttl if inj.webhook_ttl is None else float(inj.webhook_ttl)
    session = sb.new_session(msg_id, conversation_id, inj.conversation_type, inj.user_id, ttl)
    sb.conversations[conversation_id] = inj.conversation_type
    if inj.conversation_type == "1":
        sb.private_cids[inj.user_id] = conversation_id
    webhook = f"{base}/robot/sendBySession?session={session.token}"
    data = robot_message(
        inj,
        client_id=client_id,
        msg_id=msg_id,
        conversation_id=conversation_id,
        session_webhook=webhook,
        webhook_expires_ms=int(session.expires_at * 1000),
        created_ms=int(time.time() * 1000),
    )
    push = sb.gateway.push(data, msg_id=msg_id)
    return {
        "msgId": msg_id,
        "messageId": push.message_id,
        "conversationId": conversation_id,
        "sessionWebhook": webhook,
    }


async def post_message(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    try:
        inj = Injection.from_json(await _json(request))
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    return web.json_response(inject(sb, inj, base_url(sb, request)))


async def post_batch(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    body = await _json(request)
    items = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return _bad('body must be {"messages": [...]}')
    try:
        injections = [Injection.from_json(item) for item in items]
    except (TypeError, ValueError) as exc:
        return _bad(str(exc))
    base = base_url(sb, request)
    return web.json_response([inject(sb, inj, base) for inj in injections])


async def post_push(request: web.Request) -> web.Response:
    """Push any CALLBACK/EVENT (e.g. a card callback) through the same redelivery machinery."""
    sb = request.app[SANDBOX_KEY]
    body = await _json(request)
    if not isinstance(body, dict) or "topic" not in body or "data" not in body:
        return _bad('body must be {"topic", "data", "type"?, "headers"?, "msg_id"?}')
    frame_type = body.get("type", "CALLBACK")
    if frame_type not in ("CALLBACK", "EVENT", "SYSTEM"):
        return _bad("type must be CALLBACK, EVENT or SYSTEM")
    if frame_type == "SYSTEM":
        data = body["data"] if isinstance(body["data"], dict) else {}
        return web.json_response({"sent": sb.gateway.send_system(str(body["topic"]), data)})
    push = sb.gateway.push(
        body["data"],
        topic=str(body["topic"]),
        frame_type=frame_type,
        msg_id=body.get("msg_id"),
        extra_headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
    )
    return web.json_response({"messageId": push.message_id})


async def post_frame(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("raw"), str):
        return _bad('body must be {"raw": "<frame text>"}')
    return web.json_response({"sent": sb.gateway.send_raw(body["raw"], bool(body.get("all")))})


async def get_replies(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    q = request.query
    try:
        since_id = int(q.get("since_id") or 0)
    except ValueError:
        return _bad("since_id must be an integer")
    replies = sb.recorder.filter_replies(
        msg_id=q.get("msg_id") or None,
        conversation_id=q.get("conversation_id") or None,
        since_id=since_id,
        via=q.get("via") or None,
    )
    return web.json_response({"replies": replies})


async def get_acks(request: web.Request) -> web.Response:
    return web.json_response({"acks": request.app[SANDBOX_KEY].recorder.acks})


async def get_pushes(request: web.Request) -> web.Response:
    pushes = request.app[SANDBOX_KEY].recorder.pushes.values()
    return web.json_response({"pushes": [p.public() for p in pushes]})


async def get_pings(request: web.Request) -> web.Response:
    return web.json_response({"pings": list(request.app[SANDBOX_KEY].recorder.pings.values())})


async def get_bad_frames(request: web.Request) -> web.Response:
    return web.json_response({"bad_frames": request.app[SANDBOX_KEY].recorder.bad_frames})


async def get_connections(request: web.Request) -> web.Response:
    return web.json_response(
        {"connections": request.app[SANDBOX_KEY].gateway.public_connections()}
    )


async def get_state(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX_KEY].state())


async def post_fault(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    body = await _json(request)
    action = body.get("action") if isinstance(body, dict) else None
    gw = sb.gateway
    if action == "drop_socket":
        affected = gw.drop_sockets()
    elif action == "disconnect":
        grace = body.get("grace")
        if grace is not None and not isinstance(grace, (int, float)):
            return _bad("grace must be a number of seconds")
        affected = gw.disconnect(grace, str(body.get("reason") or "persistent connection is timeout"))
    elif action in ("freeze", "unfreeze", "zombie", "revive"):
        connection_id = body.get("connection_id")
        if connection_id is not None and not isinstance(connection_id, str):
            return _bad("connection_id must be a string")
        if action in ("freeze", "unfreeze"):
            affected = gw.freeze(action == "freeze", connection_id)
        else:
            affected = gw.zombify(action == "zombie", connection_id)
    elif action == "expire_webhooks":
        affected = sb.expire_sessions()
    elif action == "expire_tokens":
        affected = sb.expire_tokens()
    elif action in ("reject_auth", "accept_auth"):
        gw.auth_rejected = action == "reject_auth"
        affected = 0
    elif action == "fail_sends":
        status = body.get("status", 503)
        if not isinstance(status, int) or isinstance(status, bool) or not 500 <= status <= 599:
            return _bad("status must be an HTTP 5xx code")
        sb.failing_sends = status
        affected = 0
    elif action == "heal_sends":
        sb.failing_sends = 0
        affected = 0
    else:
        return _bad(
            f"unknown fault action {action!r}; known: drop_socket, disconnect, freeze, unfreeze, "
            "zombie, revive, expire_webhooks, expire_tokens, reject_auth, accept_auth, fail_sends, heal_sends"
        )
    return web.json_response({"action": action, "affected": affected})


async def config_handler(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    if request.method == "POST":
        body = await _json(request)
        if not isinstance(body, dict):
            return _bad("config must be a JSON object")
        try:
            sb.config.update(body)
        except ValueError as exc:
            return _bad(str(exc))
    return web.json_response(sb.config.public())


async def post_reset(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    body = await _json(request)
    sb.reset(config=bool(isinstance(body, dict) and body.get("config")))
    return web.json_response({"reset": True})


async def post_file(request: web.Request) -> web.Response:
    """Register a file the bot can later fetch through messageFiles/download."""
    sb = request.app[SANDBOX_KEY]
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("download_code"), str):
        return _bad('body must be {"download_code", "text" | "content_base64", ...}')
    if isinstance(body.get("content_base64"), str):
        content = base64.b64decode(body["content_base64"])
    else:
        content = str(body.get("text", "")).encode("utf-8")
    sb.files[body["download_code"]] = StoredFile(
        content=content,
        content_type=str(body.get("content_type") or "application/octet-stream"),
        filename=str(body.get("filename") or body["download_code"]),
    )
    return web.json_response({"download_code": body["download_code"], "size": len(content)})


async def get_file(request: web.Request) -> web.StreamResponse:
    stored = request.app[SANDBOX_KEY].files.get(request.match_info["code"])
    if stored is None:
        raise web.HTTPNotFound(text="no such file")
    return web.Response(
        body=stored.content,
        content_type=stored.content_type,
        headers={"Content-Disposition": f'attachment; filename="{stored.filename}"'},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/sandbox/messages", post_message)
    app.router.add_post("/sandbox/messages/batch", post_batch)
    app.router.add_post("/sandbox/push", post_push)
    app.router.add_post("/sandbox/frames", post_frame)
    app.router.add_get("/sandbox/replies", get_replies)
    app.router.add_get("/sandbox/acks", get_acks)
    app.router.add_get("/sandbox/pushes", get_pushes)
    app.router.add_get("/sandbox/pings", get_pings)
    app.router.add_get("/sandbox/bad_frames", get_bad_frames)
    app.router.add_get("/sandbox/connections", get_connections)
    app.router.add_get("/sandbox/state", get_state)
    app.router.add_post("/sandbox/faults", post_fault)
    app.router.add_route("*", "/sandbox/config", config_handler)
    app.router.add_post("/sandbox/reset", post_reset)
    app.router.add_post("/sandbox/files", post_file)
    app.router.add_get("/sandbox/files/{code}", get_file)
