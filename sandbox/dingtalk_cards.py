"""DingTalk card OpenAPI stand-in (create, deliver, update, AI-card streaming) to mount in the sandbox app."""

from __future__ import annotations

import collections
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from sandbox.aiothread import ThreadedAppServer

QPS_LIMIT_BODY = {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "您的请求频率超过了接口限流"}
BAD_TOKEN_BODY = {"code": "InvalidAuthentication", "message": "不合法的access_token"}
NO_PERMISSION_BODY = {
    "code": "Forbidden.AccessDenied.AccessTokenPermissionDenied",
    "message": "没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp/add-api-permission",
}


@dataclass
class CardState:
    """Card instances, every call and every streaming update; knobs tests change between runs."""

    token_check: Callable[[str], bool] = bool  # default: any non-empty token
    qps_limit: float | None = None  # card calls per second (all card endpoints together)
    max_content_bytes: int = 1024
    permissions: set[str] = field(default_factory=lambda: {"Card.Instance.Write", "Card.Streaming.Write"})
    templates: set[str] | None = None  # None: any template id exists
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)  # accepted streaming updates
    calls: list[dict[str, Any]] = field(default_factory=list)  # every call, with its status
    duplicate_guids: int = 0
    throttled: int = 0
    _window: collections.deque[float] = field(default_factory=collections.deque)

    def reset(self) -> None:
        self.cards.clear()
        self.updates.clear()
        self.calls.clear()
        self._window.clear()
        self.duplicate_guids = self.throttled = 0

    def admit(self, now: float) -> bool:
        """Sliding one-second window: at most qps_limit accepted card calls in any second."""
        if not self.qps_limit:
            return True
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= self.qps_limit:
            return False
        self._window.append(now)
        return True

    def updates_for(self, out_track_id: str) -> list[dict[str, Any]]:
        return [u for u in self.updates if u["outTrackId"] == out_track_id]

    def public(self) -> dict[str, Any]:
        return {
            "cards": self.cards,
            "updates": self.updates,
            "calls": len(self.calls),
            "accepted_at": [c["at"] for c in self.calls if c["status"] < 400],
            "throttled": self.throttled,
            "duplicate_guids": self.duplicate_guids,
            "qps_limit": self.qps_limit,
        }


CARD_STATE = web.AppKey("card_state", CardState)
CALL_RECORD = web.RequestKey("card_call", dict)


def _error(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response({**body, "requestid": uuid.uuid4().hex}, status=status)


async def _gate(request: web.Request, permission: str) -> tuple[dict[str, Any], web.Response | None]:
    """Token, permission and QPS checks shared by every card endpoint; records the call."""
    state = request.app[CARD_STATE]
    try:
        body = await request.json()
    except ValueError:
        body = None
    call = {"at": time.time(), "method": request.method, "path": request.path, "status": 200,
            "body": body if isinstance(body, dict) else None}
    state.calls.append(call)
    request[CALL_RECORD] = call

    def fail(status: int, payload: dict[str, Any]) -> tuple[dict[str, Any], web.Response]:
        return {}, _error(status, payload)

    if not state.token_check(request.headers.get("x-acs-dingtalk-access-token", "")):
        return fail(400, BAD_TOKEN_BODY)
    if permission not in state.permissions:
        return fail(403, NO_PERMISSION_BODY)
    if not state.admit(time.monotonic()):
        state.throttled += 1
        return fail(403, QPS_LIMIT_BODY)
    if not isinstance(body, dict) or not isinstance(body.get("outTrackId"), str) or not body["outTrackId"]:
        return fail(400, {"code": "invalidParameter", "message": "outTrackId is required"})
    return body, None


def _recorded(handler: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    """Store the final HTTP status (and error code) of each call in its record."""

    async def wrapper(request: web.Request) -> web.Response:
        resp = await handler(request)
        call = request.get(CALL_RECORD)
        if call is not None:
            call["status"] = resp.status
            if resp.status >= 400 and resp.body:
                call["code"] = json.loads(resp.body).get("code")
        return resp

    return wrapper


def _params(body: dict[str, Any]) -> dict[str, str] | None:
    params = (body.get("cardData") or {}).get("cardParamMap", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        return None  # cardParamMap values must be strings
    return dict(params)


def _create(state: CardState, body: dict[str, Any]) -> web.Response | None:
    template = body.get("cardTemplateId")
    if not isinstance(template, str) or not template or (state.templates is not None and template not in state.templates):
        return _error(400, {"code": "invalidParameter.cardTemplateId", "message": "卡片模板不存在"})
    params = _params(body)
    if params is None:
        return _error(400, {"code": "invalidParameter.cardParamMap", "message": "cardParamMap values must be strings"})
    out_track_id = body["outTrackId"]
    if out_track_id not in state.cards:  # same outTrackId again: the same card (a retried message)
        state.cards[out_track_id] = {
            "outTrackId": out_track_id, "templateId": template, "callbackType": body.get("callbackType"),
            "data": params, "deliveries": [], "status": "created", "createdAt": time.time(),
        }
    return None


def _deliver(state: CardState, body: dict[str, Any]) -> list[dict[str, Any]]:
    card = state.cards[body["outTrackId"]]
    results = []
    for space in str(body.get("openSpaceId", "")).split(";"):
        space_type, _, space_id = space.removeprefix("dtv1.card//").partition(".")
        model = {"IM_GROUP": "imGroupOpenDeliverModel", "IM_ROBOT": "imRobotOpenDeliverModel"}.get(space_type)
        ok = bool(model and space_id and isinstance(body.get(model), dict))
        error = "" if ok else f"bad openSpaceId {space!r} or missing deliver model"
        if ok and space not in [d["openSpaceId"] for d in card["deliveries"]]:
            card["deliveries"].append({"openSpaceId": space, "model": body[model], "at": time.time()})
        results.append({"spaceType": space_type, "spaceId": space_id, "success": ok,
                        "carrierId": uuid.uuid4().hex[:16] if ok else "", "errorMsg": error})
    return results


@_recorded
async def create_and_deliver(request: web.Request) -> web.Response:
    state = request.app[CARD_STATE]
    body, refused = await _gate(request, "Card.Instance.Write")
    if refused is not None:
        return refused
    refused = _create(state, body)
    if refused is not None:
        return refused
    results = _deliver(state, body)
    return web.json_response({"success": True, "result": {"outTrackId": body["outTrackId"], "deliverResults": results}})


@_recorded
async def create(request: web.Request) -> web.Response:
    state = request.app[CARD_STATE]
    body, refused = await _gate(request, "Card.Instance.Write")
    if refused is None:
        refused = _create(state, body)
    return refused if refused is not None else web.json_response({"success": True, "result": body["outTrackId"]})


@_recorded
async def deliver(request: web.Request) -> web.Response:
    state = request.app[CARD_STATE]
    body, refused = await _gate(request, "Card.Instance.Write")
    if refused is not None:
        return refused
    if body["outTrackId"] not in state.cards:
        return _error(400, {"code": "cardInstanceNotExist", "message": "卡片实例不存在"})
    return web.json_response({"success": True, "result": _deliver(state, body)})


@_recorded
async def update(request: web.Request) -> web.Response:
    state = request.app[CARD_STATE]
    body, refused = await _gate(request, "Card.Instance.Write")
    if refused is not None:
        return refused
    card = state.cards.get(body["outTrackId"])
    params = _params(body)
    if card is None or params is None:
        return _error(400, {"code": "invalidParameter", "message": "unknown card or bad cardParamMap"})
    by_key = bool((body.get("cardUpdateOptions") or {}).get("updateCardDataByKey"))
    card["data"] = {**card["data"], **params} if by_key else params
    return web.json_response({"success": True, "result": True})


@_recorded
async def streaming(request: web.Request) -> web.Response:
    state = request.app[CARD_STATE]
    body, refused = await _gate(request, "Card.Streaming.Write")
    if refused is not None:
        return refused
    card = state.cards.get(body["outTrackId"])
    if card is None:
        return _error(400, {"code": "cardInstanceNotExist", "message": "卡片实例不存在"})
    guid, key, content = body.get("guid"), body.get("key"), body.get("content")
    if not isinstance(guid, str) or not guid or not isinstance(key, str) or not key or not isinstance(content, str):
        return _error(400, {"code": "invalidParameter", "message": "guid, key and content are required"})
    if len(content.encode()) > state.max_content_bytes:
        return _error(400, {"code": "invalidParameter.content", "message": f"content exceeds {state.max_content_bytes} bytes"})
    if any(u["guid"] == guid for u in state.updates_for(card["outTrackId"])):
        state.duplicate_guids += 1  # idempotent: same guid, already applied
        return web.json_response({"success": True, "result": True})
    if card["status"] in ("finished", "failed"):
        return _error(400, {"code": "invalidParameter.status", "message": "card streaming already finalized"})
    full = bool(body.get("isFull"))
    card["data"][key] = content if full else card["data"].get(key, "") + content
    if body.get("isFinalize"):
        card["status"] = "failed" if body.get("isError") else "finished"
    else:
        card["status"] = "inputting"
    state.updates.append({
        "at": time.time(), "outTrackId": card["outTrackId"], "guid": guid, "key": key, "content": content,
        "isFull": full, "isFinalize": bool(body.get("isFinalize")), "isError": bool(body.get("isError")),
    })
    return web.json_response({"success": True, "result": True})


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(request.app[CARD_STATE].public())


def add_card_routes(app: web.Application, state: CardState) -> None:
    """Mount the card endpoints (and GET /sandbox/cards to inspect them) on a sandbox app."""
    app[CARD_STATE] = state
    app.router.add_post("/v1.0/card/instances/createAndDeliver", create_and_deliver)
    app.router.add_post("/v1.0/card/instances", create)
    app.router.add_post("/v1.0/card/instances/deliver", deliver)
    app.router.add_put("/v1.0/card/instances", update)
    app.router.add_put("/v1.0/card/streaming", streaming)
    app.router.add_get("/sandbox/cards", inspect)


class CardPeer:
    """The card endpoints alone on a background thread, for tests and the LLM bench."""

    def __init__(self, port: int = 0, token: str = "card-test-token", **knobs: Any) -> None:
        self.token = token
        self.state = CardState(token_check=lambda t: t == token, **knobs)
        app = web.Application()
        add_card_routes(app, self.state)
        self._server = ThreadedAppServer(app, port=port)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> "CardPeer":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> "CardPeer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def read(self, fn: Callable[[CardState], Any]) -> Any:
        """Run `fn(state)` on the server loop (a consistent snapshot; return copies)."""
        return self._server.call(lambda: fn(self.state))

    def set(self, **knobs: Any) -> None:
        def apply() -> None:
            for name, value in knobs.items():
                setattr(self.state, name, value)

        self._server.call(apply)


def main(argv: list[str] | None = None) -> None:
    """`python -m sandbox.dingtalk_cards --port 8766 --qps 20`: the card endpoints alone (benches)."""
    import argparse

    parser = argparse.ArgumentParser(description="DingTalk card endpoints stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--token", default="card-test-token")
    parser.add_argument("--qps", type=float, default=0.0, help="card calls per second before 403 (0: none)")
    args = parser.parse_args(argv)
    token = args.token
    app = web.Application()
    add_card_routes(app, CardState(token_check=lambda t: t == token, qps_limit=args.qps or None))
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
