"""Test support: card endpoints of an app lacking a card permission (the DingTalk sandbox has no such switch)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.aiothread import ThreadedAppServer

DENIED = {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied",
          "message": "没有调用该接口的权限", "requestid": "test"}


class PermissionlessCards:
    """Answers 403 AccessTokenPermissionDenied on the endpoints whose permission is missing."""

    def __init__(self, instance_write: bool, streaming_write: bool) -> None:
        self.instance_write = instance_write
        self.streaming_write = streaming_write
        self.cards: dict[str, dict[str, str]] = {}
        app = web.Application()
        app.router.add_post("/v1.0/card/instances/createAndDeliver", self.create)
        app.router.add_put("/v1.0/card/instances", self.update)
        app.router.add_put("/v1.0/card/streaming", self.streaming)
        self._server = ThreadedAppServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> PermissionlessCards:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    async def create(self, request: web.Request) -> web.Response:
        if not self.instance_write:
            return web.json_response(DENIED, status=403)
        body: dict[str, Any] = await request.json()
        self.cards[body["outTrackId"]] = dict(body["cardData"]["cardParamMap"])
        return web.json_response({"success": True, "result": {"outTrackId": body["outTrackId"], "deliverResults": []}})

    async def update(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.cards[body["outTrackId"]].update(body["cardData"]["cardParamMap"])
        return web.json_response({"success": True, "result": True})

    async def streaming(self, request: web.Request) -> web.Response:
        return web.json_response(DENIED, status=403)
