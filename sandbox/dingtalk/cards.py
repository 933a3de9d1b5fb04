"""Interactive / AI card endpoints (§6.4): create, deliver, update, streaming; each card is a recorded reply."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from sandbox.dingtalk.context import SANDBOX_KEY, Sandbox
from sandbox.dingtalk.openapi import api_error, authorized_body, user_conversation

MAX_STREAM_BYTES = 1024
SPACE_PREFIX = "dtv1.card//"


class CardError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _param_map(card_data: Any, what: str) -> dict[str, str]:
    if card_data is None:
        return {}
    pm = card_data.get("cardParamMap") if isinstance(card_data, dict) else None
    if not isinstance(pm, dict) or not all(isinstance(v, str) for v in pm.values()):
        raise CardError(f"InvalidParameter.{what}", f"{what}.cardParamMap must map keys to strings")
    return dict(pm)


def card_text(card: dict[str, Any]) -> str:
    """What a user would read on the card: streamed content, else the usual content variables."""
    if card["streams"]:
        return "\n".join(card["streams"].values())
    params = card["cardData"]
    for key in ("content", "markdown", "text", "msgContent", "title"):
        if params.get(key):
            return params[key]
    return ""


def _snapshot(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "outTrackId": card["outTrackId"],
        "cardTemplateId": card["cardTemplateId"],
        "cardData": {"cardParamMap": dict(card["cardData"])},
        "privateData": card["privateData"],
        "streams": dict(card["streams"]),
        "status": card["status"],
    }


def _refresh_replies(sb: Sandbox, card: dict[str, Any]) -> None:
    ids = set(card["reply_ids"])
    for reply in sb.recorder.replies:
        if reply["id"] in ids:
            reply.update(body=_snapshot(card), text=card_text(card), card_status=card["status"], updated_at=time.time())


def _create(sb: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    out_track_id, template = body.get("outTrackId"), body.get("cardTemplateId")
    if not isinstance(out_track_id, str) or not out_track_id:
        raise CardError("InvalidParameter.OutTrackId", "outTrackId is required")
    if not isinstance(template, str) or not template:
        raise CardError("InvalidParameter.CardTemplateId", "cardTemplateId is required")
    if out_track_id in sb.cards:
        raise CardError("InvalidParameter.OutTrackId", f"outTrackId {out_track_id} 已存在")
    if body.get("callbackType", "STREAM") not in ("STREAM", "HTTP"):
        raise CardError("InvalidParameter.CallbackType", "callbackType must be STREAM or HTTP")
    card = {
        "outTrackId": out_track_id,
        "cardTemplateId": template,
        "cardData": _param_map(body.get("cardData"), "CardData"),
        "privateData": body.get("privateData") or {},
        "callbackType": body.get("callbackType", "STREAM"),
        "streams": {},
        "status": "created",
        "reply_ids": [],
        "guids": set(),
        "created_at": time.time(),
    }
    sb.cards[out_track_id] = card
    return card


def _card(sb: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    card = sb.cards.get(body.get("outTrackId") or "")
    if card is None:
        raise CardError("InvalidParameter.OutTrackId", f"card {body.get('outTrackId')!r} 不存在")
    return card


def _deliver(sb: Sandbox, card: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    space_ids = body.get("openSpaceId")
    if not isinstance(space_ids, str) or not space_ids:
        raise CardError("InvalidParameter.OpenSpaceId", "openSpaceId is required")
    results = []
    for space in space_ids.split(";"):
        if not space.startswith(SPACE_PREFIX) or "." not in space[len(SPACE_PREFIX):]:
            raise CardError("InvalidParameter.OpenSpaceId", f"bad openSpaceId {space!r}")
        space_type, space_id = space[len(SPACE_PREFIX):].split(".", 1)
        if space_type == "IM_GROUP":
            model = body.get("imGroupOpenDeliverModel")
            if not isinstance(model, dict) or model.get("robotCode") != sb.config.client_id:
                raise CardError("InvalidParameter.ImGroupOpenDeliverModel", "imGroupOpenDeliverModel.robotCode 不存在")
            where = {"conversation_id": space_id, "conversation_type": "2", "user_ids": []}
        elif space_type == "IM_ROBOT":
            model = body.get("imRobotOpenDeliverModel")
            if not isinstance(model, dict) or model.get("spaceType") != "IM_ROBOT":
                raise CardError(
                    "InvalidParameter.ImRobotOpenDeliverModel", 'imRobotOpenDeliverModel.spaceType must be "IM_ROBOT"'
                )
            cid = user_conversation(sb, space_id)
            where = {"conversation_id": cid, "conversation_type": "1", "user_ids": [space_id]}
        else:
            raise CardError("InvalidParameter.OpenSpaceId", f"unsupported space type {space_type!r}")
        reply = sb.recorder.add_reply(
            {"via": "card", "msg_id": None, **where, "msgtype": "card", "out_track_id": card["outTrackId"],
             "body": _snapshot(card), "text": card_text(card), "card_status": card["status"]}
        )
        card["reply_ids"].append(reply["id"])
        results.append({"spaceType": space_type, "spaceId": space_id, "success": True,
                        "carrierId": uuid.uuid4().hex, "errorMsg": ""})
    if card["status"] == "created":
        card["status"] = "delivered"
    _refresh_replies(sb, card)
    return results


def _update(sb: Sandbox, body: dict[str, Any]) -> None:
    card = _card(sb, body)
    options = body.get("cardUpdateOptions") or {}
    if body.get("cardData") is not None:
        params = _param_map(body.get("cardData"), "CardData")
        card["cardData"] = {**card["cardData"], **params} if options.get("updateCardDataByKey") else params
    if body.get("privateData") is not None:
        if options.get("updatePrivateDataByKey"):
            card["privateData"] = {**card["privateData"], **body["privateData"]}
        else:
            card["privateData"] = body["privateData"]
    update = {"outTrackId": card["outTrackId"], "kind": "update", "body": body, "at": time.time()}
    sb.recorder.card_updates.append(update)
    _refresh_replies(sb, card)


def _stream(sb: Sandbox, body: dict[str, Any]) -> None:
    card = _card(sb, body)
    guid, key, content = body.get("guid"), body.get("key"), body.get("content", "")
    if not isinstance(guid, str) or not guid:
        raise CardError("InvalidParameter.Guid", "guid is required")
    if not isinstance(key, str) or not key:
        raise CardError("InvalidParameter.Key", "key is required")
    if not isinstance(content, str):
        raise CardError("InvalidParameter.Content", "content must be a string")
    if len(content.encode("utf-8")) > MAX_STREAM_BYTES:
        raise CardError("InvalidParameter.Content", f"content exceeds {MAX_STREAM_BYTES} bytes per call")
    flags = {name: bool(body.get(name, False)) for name in ("isFull", "isFinalize", "isError")}
    record = {"outTrackId": card["outTrackId"], "kind": "streaming", "guid": guid, "key": key,
              "content": content, **flags, "duplicate": guid in card["guids"],
              "after_finalize": card["status"] in ("finished", "failed"), "at": time.time()}
    sb.recorder.card_updates.append(record)
    if record["duplicate"] or record["after_finalize"]:
        return  # a retried guid is idempotent; a finished card no longer changes (but it is flagged)
    card["guids"].add(guid)
    card["streams"][key] = content if flags["isFull"] else card["streams"].get(key, "") + content
    card["status"] = "failed" if flags["isError"] else "finished" if flags["isFinalize"] else "inputting"
    _refresh_replies(sb, card)


async def _handle(request: web.Request, action: str) -> web.Response:
    checked = await authorized_body(request, "card")
    if isinstance(checked, web.Response):
        return checked
    sb, body = checked
    if not isinstance(body, dict):
        return api_error(400, "InvalidParameter", "body must be a JSON object")
    try:
        if action == "create":
            return web.json_response({"success": True, "result": _create(sb, body)["outTrackId"]})
        if action == "deliver":
            return web.json_response({"success": True, "result": _deliver(sb, _card(sb, body), body)})
        if action == "createAndDeliver":
            if not isinstance(body.get("openSpaceId"), str):
                raise CardError("InvalidParameter.OpenSpaceId", "openSpaceId is required")
            card = _create(sb, body)
            try:
                results = _deliver(sb, card, body)
            except CardError:
                sb.cards.pop(card["outTrackId"], None)  # one call: all or nothing
                raise
            result = {"outTrackId": card["outTrackId"], "deliverResults": results}
            return web.json_response({"success": True, "result": result})
        if action == "update":
            _update(sb, body)
        else:
            _stream(sb, body)
        return web.json_response({"success": True, "result": True})
    except CardError as err:
        return api_error(400, err.code, err.message)


async def create(request: web.Request) -> web.Response:
    return await _handle(request, "create")


async def deliver(request: web.Request) -> web.Response:
    return await _handle(request, "deliver")


async def create_and_deliver(request: web.Request) -> web.Response:
    return await _handle(request, "createAndDeliver")


async def update(request: web.Request) -> web.Response:
    return await _handle(request, "update")


async def streaming(request: web.Request) -> web.Response:
    return await _handle(request, "streaming")


def public_card(sb: Sandbox, card: dict[str, Any]) -> dict[str, Any]:
    updates = [u for u in sb.recorder.card_updates if u["outTrackId"] == card["outTrackId"]]
    return {**_snapshot(card), "replyIds": list(card["reply_ids"]), "updates": updates}


async def list_cards(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    return web.json_response({"cards": [public_card(sb, c) for c in sb.cards.values()]})


async def get_card(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    card = sb.cards.get(request.match_info["out_track_id"])
    if card is None:
        raise web.HTTPNotFound(text="no such card")
    return web.json_response(public_card(sb, card))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1.0/card/instances", create)
    app.router.add_put("/v1.0/card/instances", update)
    app.router.add_post("/v1.0/card/instances/deliver", deliver)
    app.router.add_post("/v1.0/card/instances/createAndDeliver", create_and_deliver)
    app.router.add_put("/v1.0/card/streaming", streaming)
    app.router.add_get("/sandbox/cards", list_cards)
    app.router.add_get("/sandbox/cards/{out_track_id}", get_card)
