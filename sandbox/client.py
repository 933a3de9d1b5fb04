"""`SandboxClient`: a small synchronous client of the sandbox's /sandbox/* control API (tests, bench, chat)."""

from __future__ import annotations

import base64
import ssl
import time
from functools import lru_cache
from typing import Any

import httpx


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Building a CA bundle costs ~150 ms per httpx.Client; tests make hundreds of clients.
    return ssl.create_default_context()


def http_client(**kw: Any) -> httpx.Client:
    """An httpx.Client that shares one SSL context (cheap to create)."""
    return httpx.Client(verify=_ssl_context(), **kw)


class SandboxError(RuntimeError):
    """The control API refused a request (bad body, unknown action...)."""


class SandboxClient:
    """Drive a running sandbox: inject messages and faults, read pushes, ACKs and replies."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http_client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = self._http.request(method, path, **kw)
        if response.status_code >= 400:
            raise SandboxError(f"{method} {path} → {response.status_code}: {response.text}")
        return response.json()

    # ---- injection -------------------------------------------------------------------------

    def send_message(self, text: str = "", **fields: Any) -> dict[str, str]:
        """Inject one robot message; fields as POST /sandbox/messages (conversation_type, user_id...).

        Returns {"msgId", "messageId", "conversationId", "sessionWebhook"}.
        """
        return self._call("POST", "/sandbox/messages", json={"text": text, **fields})

    def send_batch(self, messages: list[dict[str, Any]]) -> list[dict[str, str]]:
        return self._call("POST", "/sandbox/messages/batch", json={"messages": messages})

    def push(self, topic: str, data: Any, frame_type: str = "CALLBACK", **extra: Any) -> dict[str, Any]:
        """Push a CALLBACK/EVENT (e.g. a card callback; re-pushed until ACKed as `redelivery` says) → {"messageId"},
        or a SYSTEM frame to every live connection (no ACK expected) → {"sent": n}.
        extra: headers={...} added to the frame headers, msg_id=... recorded with the push."""
        body = {"topic": topic, "data": data, "type": frame_type, **extra}
        return self._call("POST", "/sandbox/push", json=body)

    def push_raw(self, text: str, all_connections: bool = False) -> int:
        """Send one verbatim WebSocket text frame; returns how many connections got it."""
        return self._call("POST", "/sandbox/frames", json={"raw": text, "all": all_connections})["sent"]

    def add_file(self, download_code: str, content: bytes | str, **fields: Any) -> dict[str, Any]:
        raw = content.encode("utf-8") if isinstance(content, str) else content
        body = {"download_code": download_code, "content_base64": base64.b64encode(raw).decode(), **fields}
        return self._call("POST", "/sandbox/files", json=body)

    def add_robot(self, secret: str = "", access_token: str = "") -> dict[str, str]:
        """A custom group robot (sandbox.dingtalk.robots): {"webhook", "access_token", "secret"}; what it
        receives shows in `replies(via="robot")`."""
        return self._call("POST", "/sandbox/robots", json={"secret": secret, "access_token": access_token})

    # ---- observation -----------------------------------------------------------------------

    def replies(
        self,
        msg_id: str | None = None,
        conversation_id: str | None = None,
        since_id: int = 0,
        via: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {"msg_id": msg_id, "conversation_id": conversation_id, "since_id": since_id, "via": via}
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return self._call("GET", "/sandbox/replies", params=clean)["replies"]

    def acks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/sandbox/acks")["acks"]

    def pushes(self) -> list[dict[str, Any]]:
        return self._call("GET", "/sandbox/pushes")["pushes"]

    def pings(self) -> list[dict[str, Any]]:
        return self._call("GET", "/sandbox/pings")["pings"]

    def bad_frames(self) -> list[dict[str, Any]]:
        return self._call("GET", "/sandbox/bad_frames")["bad_frames"]

    def connections(self) -> list[dict[str, Any]]:
        return self._call("GET", "/sandbox/connections")["connections"]

    def cards(self) -> list[dict[str, Any]]:
        """Every card instance with its streams, status, reply ids and recorded updates."""
        return self._call("GET", "/sandbox/cards")["cards"]

    def card(self, out_track_id: str) -> dict[str, Any]:
        return self._call("GET", f"/sandbox/cards/{out_track_id}")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/sandbox/state")

    # ---- control ---------------------------------------------------------------------------

    def fault(self, action: str, **kw: Any) -> dict[str, Any]:
        """drop_socket | disconnect (grace=, reason=) | freeze | unfreeze (a stale socket: pushes to it
        are swallowed, no pongs) | zombie | revive (the server gave the socket up: no pushes, no SYSTEM
        pings, pongs still flow); those four take connection_id= (default: every connection) |
        expire_webhooks |
        expire_tokens | reject_auth | accept_auth | fail_sends (status=503: every reply fails
        with that 5xx, unrecorded) | heal_sends."""
        return self._call("POST", "/sandbox/faults", json={"action": action, **kw})

    def configure(self, **kw: Any) -> dict[str, Any]:
        """Change config (redelivery: off | events | all, redeliver_after, redeliver_jitter,
        max_redeliveries, ping_interval, webhook_ttl, qps_limits, queue_when_disconnected, ack_delay,
        ticket_ttl, token_ttl, disconnect_grace); returns the config."""
        return self._call("POST", "/sandbox/config", json=kw)

    def config(self) -> dict[str, Any]:
        return self._call("GET", "/sandbox/config")

    def reset(self, config: bool = False) -> None:
        """Forget recorded data; config=True also restores default config and clears faults."""
        self._call("POST", "/sandbox/reset", json={"config": config})

    # ---- waiting ---------------------------------------------------------------------------

    def wait_for_replies(
        self, n: int, timeout: float = 10.0, interval: float = 0.05, **filters: Any
    ) -> list[dict[str, Any]]:
        """Poll until at least n replies (matching filters) exist; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.replies(**filters)
            if len(found) >= n:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(found)} of {n} replies after {timeout} s")
            time.sleep(interval)

    def wait_for_state(
        self, timeout: float = 10.0, interval: float = 0.05, **at_least: int
    ) -> dict[str, Any]:
        """Poll /sandbox/state until every named counter reaches its value, e.g. acked=500."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if all(state.get(k, 0) >= v for k, v in at_least.items()):
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"state {state} did not reach {at_least} in {timeout} s")
            time.sleep(interval)
