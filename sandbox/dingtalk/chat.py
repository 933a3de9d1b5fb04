"""The chat page at `/`: a self-contained HTML page for talking to the bot through the sandbox."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

PAGE = Path(__file__).with_name("static") / "chat.html"


async def chat_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", chat_page)
