"""A remote skill that misbehaves on demand (run as its own process by the remote-skill tests).

POST /        answers by mode: ok (a reply), 500, slow (sleeps --delay seconds, then a reply)
POST /mode    {"mode": "..."} switches the mode; GET /count → {"count": requests to /}
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from aiohttp import web

state: dict[str, Any] = {"mode": "ok", "count": 0, "delay": 5.0}


async def turn(request: web.Request) -> web.Response:
    state["count"] += 1
    body = await request.json()
    if state["mode"] == "500":
        return web.json_response({"error": "boom"}, status=500)
    if state["mode"] == "slow":
        await asyncio.sleep(float(state["delay"]))
    return web.json_response({"text": f"remote says: {body.get('text', '')}", "kind": "text"})


async def mode(request: web.Request) -> web.Response:
    state["mode"] = (await request.json())["mode"]
    return web.json_response(state)


async def count(request: web.Request) -> web.Response:
    return web.json_response(state)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--delay", type=float, default=5.0)
    args = parser.parse_args()
    state.update(mode=args.mode, delay=args.delay)
    app = web.Application()
    app.router.add_post("/", turn)
    app.router.add_post("/mode", mode)
    app.router.add_get("/count", count)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
