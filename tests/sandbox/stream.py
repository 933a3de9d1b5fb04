"""A bare Stream-protocol client on websocket-client, to test the sandbox's gateway from outside."""

from __future__ import annotations

import json
from typing import Any

import httpx
import websocket

from sandbox.client import http_client

HTTP = http_client(timeout=5)

BOT_TOPIC = "/v1.0/im/bot/messages/get"
SUBSCRIPTIONS = [{"type": "CALLBACK", "topic": BOT_TOPIC}, {"type": "EVENT", "topic": "*"}]


def register(base_url: str, client_id: str = "sandbox-client-id",
             client_secret: str = "sandbox-client-secret",
             subscriptions: list[dict[str, str]] | None = None) -> httpx.Response:
    body = {
        "clientId": client_id,
        "clientSecret": client_secret,
        "subscriptions": SUBSCRIPTIONS if subscriptions is None else subscriptions,
        "ua": "sandbox-tests/1.0",
        "localIp": "127.0.0.1",
    }
    return HTTP.post(f"{base_url}/v1.0/gateway/connections/open", json=body,
                     headers={"Accept": "application/json"})


class StreamClient:
    """Register, connect with the ticket, read frames, write ACKs."""

    def __init__(self, base_url: str, subscriptions: list[dict[str, str]] | None = None,
                 skip_utf8: bool = False) -> None:
        self.base_url = base_url
        self.subscriptions = subscriptions
        self.skip_utf8 = skip_utf8
        self.ws: websocket.WebSocket | None = None

    def connect(self) -> None:
        answer = register(self.base_url, subscriptions=self.subscriptions)
        answer.raise_for_status()
        body = answer.json()
        self.ws = websocket.create_connection(
            f"{body['endpoint']}?ticket={body['ticket']}", timeout=5, skip_utf8_validation=self.skip_utf8
        )

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.ws is not None
        self.ws.settimeout(timeout)
        return json.loads(self.ws.recv())

    def recv_topic(self, topic: str, timeout: float = 5.0) -> dict[str, Any]:
        """Next frame with this topic, skipping others (e.g. pings)."""
        while True:
            frame = self.recv(timeout)
            if frame["headers"]["topic"] == topic:
                return frame

    def ack(self, frame: dict[str, Any], data: Any = None, code: int = 200) -> None:
        assert self.ws is not None
        payload = {"response": data} if data is None or not isinstance(data, str) else data
        self.ws.send(json.dumps({
            "code": code,
            "headers": {"messageId": frame["headers"]["messageId"], "contentType": "application/json"},
            "message": "OK",
            "data": payload if isinstance(payload, str) else json.dumps(payload),
        }))

    def echo_ping(self, frame: dict[str, Any]) -> None:
        self.ack(frame, frame["data"])

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except Exception:  # already dropped by a fault test
                pass
            self.ws = None


class EchoBot:
    """A tiny bot on the Stream protocol: ACKs every robot message and echoes it over its webhook."""

    def __init__(self, base_url: str) -> None:
        import threading

        self.client = StreamClient(base_url)
        self.client.connect()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._running = True
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            try:
                frame = self.client.recv(timeout=0.2)
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:  # socket closed by the test
                return
            if frame["headers"]["topic"] != BOT_TOPIC:
                continue
            self.client.ack(frame)
            data = json.loads(frame["data"])
            body = {"msgtype": "text", "text": {"content": "echo: " + data["text"]["content"].strip()}}
            HTTP.post(data["sessionWebhook"], json=body)

    def stop(self) -> None:
        self._running = False
        self._thread.join(2)
        self.client.close()
