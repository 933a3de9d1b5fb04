"""Stream gateway: registration, ticketed WebSocket, pushes (re-pushed as set), SYSTEM ping/disconnect, faults."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import struct
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from sandbox.dingtalk.connection import Connection, Ticket, error_response, now_ms
from sandbox.dingtalk.messages import new_message_id
from sandbox.dingtalk.state import Push, Recorder, SandboxConfig

log = logging.getLogger("sandbox.gateway")

TOPIC_BOT_MESSAGE = "/v1.0/im/bot/messages/get"
TICK_SECONDS = 0.05


class Gateway:
    """The Stream side of the sandbox; all methods run on the server's event loop."""

    def __init__(self, config: SandboxConfig, recorder: Recorder) -> None:
        self.config = config
        self.recorder = recorder
        self.app_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "dingtalk-sandbox:" + config.client_id))
        self.tickets: dict[str, Ticket] = {}
        self.connections: dict[str, Connection] = {}
        self.queued: deque[str] = deque()
        self.auth_rejected = False
        self.system_ids: dict[str, str] = {}  # messageId of a disconnect → topic, to label its ACK
        self._ticker: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[bool]] = set()  # sockets closing after a disconnect's grace

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, app: web.Application) -> None:
        self._ticker = asyncio.create_task(self._tick())

    async def shutdown(self, app: web.Application) -> None:
        if self._ticker:
            self._ticker.cancel()
        await asyncio.gather(*(self._close(c) for c in list(self.connections.values())))

    @staticmethod
    async def _close(conn: Connection) -> None:
        try:
            await asyncio.wait_for(conn.ws.close(code=1001, message=b"sandbox stopping"), 1.0)
        except TimeoutError:
            if conn.request.transport is not None:
                conn.request.transport.abort()

    def reset(self) -> None:
        self.queued.clear()
        self.system_ids.clear()

    # ---- HTTP: registration and WebSocket --------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        """POST /v1.0/gateway/connections/open."""
        try:
            body = await request.json()
        except ValueError:
            return error_response(400, "InvalidParameter", "request body is not JSON")
        if not isinstance(body, dict):
            return error_response(400, "InvalidParameter", "request body must be a JSON object")
        if (
            self.auth_rejected
            or body.get("clientId") != self.config.client_id
            or body.get("clientSecret") != self.config.client_secret
        ):
            self.recorder.registration_failures += 1
            return error_response(401, "authFailed", "鉴权失败")
        subs = body.get("subscriptions")
        if not isinstance(subs, list) or not all(isinstance(s, dict) for s in subs):
            return error_response(400, "InvalidParameter", "subscriptions must be a list of {type, topic}")
        now = time.monotonic()
        # Unused tickets die after ticket_ttl; forget them so a reconnect storm cannot grow the dict.
        self.tickets = {k: t for k, t in self.tickets.items() if now - t.created <= self.config.ticket_ttl}
        ticket = str(uuid.uuid4())
        self.tickets[ticket] = Ticket(now, subs, str(body.get("ua", "")), str(body.get("localIp", "")))
        self.recorder.registrations += 1
        return web.json_response({"endpoint": f"ws://{request.host}/connect", "ticket": ticket})

    async def connect(self, request: web.Request) -> web.StreamResponse:
        """GET /connect?ticket=... — the ticket is checked before the upgrade and used up."""
        ticket = self.tickets.pop(request.query.get("ticket", ""), None)
        if ticket is None or time.monotonic() - ticket.created > self.config.ticket_ttl:
            return error_response(401, "invalidTicket", "ticket 不存在或已过期")
        ws = web.WebSocketResponse(autoping=False, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        conn = Connection(
            id=uuid.uuid4().hex,
            ws=ws,
            request=request,
            subscriptions=ticket.subscriptions,
            ua=ticket.ua,
            local_ip=ticket.local_ip,
        )
        conn.next_ping = time.monotonic() + self.config.ping_interval
        conn.writer = asyncio.create_task(self._write_loop(conn))
        self.connections[conn.id] = conn
        log.info("connection %s opened (%s)", conn.id, conn.ua)
        self._flush_queue()
        try:
            await self._read_loop(conn)
        finally:
            self.connections.pop(conn.id, None)
            conn.writer.cancel()
            log.info("connection %s closed", conn.id)
        return ws

    async def _read_loop(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if msg.type == WSMsgType.PING:
                if not conn.frozen:  # a frozen socket does not answer pings; a zombie still does
                    await conn.ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                if not conn.frozen and not conn.zombie:  # neither hears anything either
                    self._on_upstream(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._bad_frame(conn, repr(msg.data[:200]), "binary frame")
            elif msg.type == WSMsgType.ERROR:
                break

    async def _write_loop(self, conn: Connection) -> None:
        while True:
            text = await conn.outbox.get()
            if conn.frozen or conn.zombie:
                continue  # swallowed
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                log.info("connection %s: write failed: %s", conn.id, exc)
                return

    # ---- upstream frames (ACKs, ping echoes) -----------------------------------------------

    def _bad_frame(self, conn: Connection, raw: str, reason: str) -> None:
        self.recorder.bad_frames.append(
            {"raw": raw[:2000], "reason": reason, "connection_id": conn.id, "time": time.time()}
        )

    def _on_upstream(self, conn: Connection, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            return self._bad_frame(conn, raw, "not JSON")
        headers = frame.get("headers") if isinstance(frame, dict) else None
        message_id = headers.get("messageId") if isinstance(headers, dict) else None
        if not message_id:
            return self._bad_frame(conn, raw, "no headers.messageId")
        delay = self.config.ack_delay
        if delay > 0 and message_id in self.recorder.pushes:
            # A business ACK delayed on its way: it counts only when it "arrives".
            asyncio.get_running_loop().call_later(delay, self._record_upstream, conn, frame, str(message_id))
            return None
        return self._record_upstream(conn, frame, str(message_id))

    def _record_upstream(self, conn: Connection, frame: dict[str, Any], message_id: str) -> None:
        headers = frame["headers"]
        now = time.time()
        ping = self.recorder.pings.get(message_id)
        if ping is not None:
            try:
                echoed = json.loads(frame.get("data") or "null")
            except (TypeError, ValueError):
                echoed = None
            ping.update(
                echoed=True,
                echo_ok=isinstance(echoed, dict) and echoed.get("opaque") == ping["opaque"],
                echoed_at=now,
                code=frame.get("code"),
            )
            return None
        push = self.recorder.pushes.get(message_id)
        kind = "push" if push else self.system_ids.get(message_id, "unknown")
        code = frame.get("code")
        self.recorder.acks.append(
            {
                "messageId": message_id,
                "msgId": push.msg_id if push else None,
                "kind": kind,
                "code": code,
                "message": frame.get("message"),
                "data": frame.get("data"),
                "headers": headers,
                "time": now,
                "connection_id": conn.id,
            }
        )
        if push and code == 200 and not push.acked:
            push.acked, push.acked_at = True, now
        return None

    # ---- pushes ----------------------------------------------------------------------------

    def push(
        self,
        data: Any,
        *,
        topic: str = TOPIC_BOT_MESSAGE,
        frame_type: str = "CALLBACK",
        msg_id: str | None = None,
        message_id: str | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> Push:
        """Record a business push and send it to one random subscribed connection (or queue it)."""
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        push = Push(
            message_id=message_id or new_message_id(),
            type=frame_type,
            topic=topic,
            data=payload,
            msg_id=msg_id,
            injected_at=time.time(),
            extra_headers=dict(extra_headers or {}),
        )
        self.recorder.pushes[push.message_id] = push
        self._deliver(push)
        return push

    def _eligible(self, push: Push) -> list[Connection]:
        # A zombie is dead to the server (it pushes nothing there); a frozen socket is not: the
        # server still picks it at random, and whatever goes there is swallowed.
        return [
            c
            for c in self.connections.values()
            if not c.disconnecting and not c.zombie and not c.ws.closed and c.subscribed(push.type, push.topic)
        ]

    def _deliver(self, push: Push) -> None:
        targets = self._eligible(push)
        if not targets:
            if self.config.queue_when_disconnected:
                self.queued.append(push.message_id)
            else:
                self.recorder.dropped += 1
                push.abandoned = True
            return
        conn = random.choice(targets)
        headers = {
            "topic": push.topic,
            "messageId": push.message_id,
            "contentType": "application/json",
            "time": now_ms(),
            "appId": self.app_id,
            "connectionId": conn.id,
            **push.extra_headers,
        }
        frame = {"specVersion": "1.0", "type": push.type, "headers": headers, "data": push.data}
        conn.outbox.put_nowait(json.dumps(frame, ensure_ascii=False))
        push.count += 1
        if push.count > 1:
            self.recorder.redelivered += 1
        push.connection_ids.append(conn.id)
        push.pushed_at.append(time.time())
        if self.config.redelivers(push.type):
            delay = self.config.redeliver_after + random.uniform(0.0, self.config.redeliver_jitter)
            asyncio.get_running_loop().call_later(delay, self._redeliver_if_unacked, push, push.count)

    def _redeliver_if_unacked(self, push: Push, count_when_scheduled: int) -> None:
        if push.acked or push.abandoned or push.count != count_when_scheduled:
            return
        if not self.config.redelivers(push.type):
            return  # redelivery was switched off since
        if self.recorder.pushes.get(push.message_id) is not push:
            return  # reset since
        if push.count > self.config.max_redeliveries:
            push.abandoned = True
            return
        self._deliver(push)

    def _flush_queue(self) -> None:
        waiting, self.queued = self.queued, deque()
        for message_id in waiting:
            push = self.recorder.pushes.get(message_id)
            if push and not push.acked and not push.abandoned:
                self._deliver(push)

    def send_raw(self, text: str, all_connections: bool = False) -> int:
        """Write one verbatim text frame to one random (or every) live connection."""
        live = [c for c in self.connections.values() if not c.ws.closed]
        if not live:
            return 0
        targets = live if all_connections else [random.choice(live)]
        for conn in targets:
            conn.outbox.put_nowait(text)
        return len(targets)

    def send_system(self, topic: str, data: dict[str, Any]) -> int:
        """A SYSTEM frame (e.g. KEEPALIVE) to every live connection; returns how many got it."""
        live = [c for c in self.connections.values() if not c.ws.closed]
        for conn in live:
            conn.outbox.put_nowait(self._system_frame(conn, topic, data))
        return len(live)

    def _system_frame(self, conn: Connection, topic: str, data: dict[str, Any]) -> str:
        message_id = uuid.uuid4().hex
        frame = {
            "specVersion": "1.0",
            "type": "SYSTEM",
            "headers": {
                "topic": topic,
                "messageId": message_id,
                "contentType": "application/json",
                "time": now_ms(),
            },
            "data": json.dumps(data),
        }
        if topic == "ping":
            self.recorder.pings[message_id] = {
                "messageId": message_id,
                "opaque": data.get("opaque"),
                "connection_id": conn.id,
                "sent_at": time.time(),
                "echoed": False,
                "echo_ok": False,
            }
        else:
            self.system_ids[message_id] = topic
        return json.dumps(frame)

    async def _tick(self) -> None:
        """Send SYSTEM pings when due (ping_interval may change at run time)."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            interval = self.config.ping_interval
            if interval <= 0:
                continue
            now = time.monotonic()
            for conn in list(self.connections.values()):
                if conn.frozen or conn.zombie or conn.ws.closed or now < conn.next_ping:
                    continue
                conn.next_ping = now + interval
                frame = self._system_frame(conn, "ping", {"opaque": str(uuid.uuid4())})
                conn.outbox.put_nowait(frame)

    # ---- faults ----------------------------------------------------------------------------

    def drop_sockets(self) -> int:
        """Cut every TCP connection with a reset: no close frame, no FIN handshake."""
        count = 0
        for conn in list(self.connections.values()):
            transport = conn.request.transport
            if transport is None:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            transport.abort()
            count += 1
        return count

    def disconnect(self, grace: float | None = None, reason: str = "persistent connection is timeout") -> int:
        """Announce SYSTEM disconnect, stop pushing to the connection, close it `grace` s later."""
        grace = self.config.disconnect_grace if grace is None else grace
        loop = asyncio.get_running_loop()
        count = 0
        for conn in list(self.connections.values()):
            if conn.disconnecting or conn.ws.closed:
                continue
            conn.disconnecting = True
            conn.outbox.put_nowait(self._system_frame(conn, "disconnect", {"reason": reason}))
            loop.call_later(grace, self._close_soon, conn)
            count += 1
        return count

    def freeze(self, frozen: bool, connection_id: str | None = None) -> int:
        """Frozen: a stale socket the server still believes in. It pushes there (those pushes are
        swallowed), sends no SYSTEM pings, answers no WebSocket ping and hears no ACK."""
        targets = self._targets(connection_id)
        for conn in targets:
            conn.frozen = frozen
        return len(targets)

    def zombify(self, zombie: bool, connection_id: str | None = None) -> int:
        """Zombie: the server has given the socket up without closing it. It pushes nothing there
        (pushes go to other connections or wait), sends no SYSTEM pings and hears no ACK, but its
        TCP stack still answers WebSocket pings, so only an application-level watchdog notices."""
        targets = self._targets(connection_id)
        for conn in targets:
            conn.zombie = zombie
        if not zombie:
            self._flush_queue()
        return len(targets)

    def _targets(self, connection_id: str | None) -> list[Connection]:
        conns = list(self.connections.values())
        return conns if connection_id is None else [c for c in conns if c.id == connection_id]

    def public_connections(self) -> list[dict[str, Any]]:
        return [c.public() for c in self.connections.values()]

    def _close_soon(self, conn: Connection) -> None:
        """Close a connection's socket from a timer callback; the task is kept until it is done."""
        task = asyncio.create_task(conn.ws.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
