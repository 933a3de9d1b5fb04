"""One Stream connection as the gateway sees it, its ticket, and the gateway's HTTP error shape."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def now_ms() -> str:
    return str(int(time.time() * 1000))


def error_response(status: int, code: str, message: str) -> web.Response:
    body = {"requestid": uuid.uuid4().hex.upper(), "code": code, "message": message}
    return web.json_response(body, status=status)


@dataclass
class Ticket:
    created: float
    subscriptions: list[dict[str, Any]]
    ua: str
    local_ip: str


@dataclass
class Connection:
    """One open Stream connection and what the sandbox does to it."""

    id: str
    ws: web.WebSocketResponse
    request: web.Request
    subscriptions: list[dict[str, Any]]
    ua: str
    local_ip: str
    opened_at: float = field(default_factory=time.time)
    next_ping: float = 0.0
    frozen: bool = False
    zombie: bool = False
    disconnecting: bool = False
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    writer: asyncio.Task[None] | None = None

    def subscribed(self, frame_type: str, topic: str) -> bool:
        if frame_type == "SYSTEM":
            return True  # connection management needs no subscription
        for sub in self.subscriptions:
            if sub.get("type") == frame_type and (
                sub.get("topic") == topic or (frame_type == "EVENT" and sub.get("topic") == "*")
            ):
                return True
        return False

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscriptions": self.subscriptions,
            "ua": self.ua,
            "localIp": self.local_ip,
            "openedAt": self.opened_at,
            "frozen": self.frozen,
            "zombie": self.zombie,
            "disconnecting": self.disconnecting,
        }
