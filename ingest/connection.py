"""One Stream socket: registration (ticket), the WebSocket, its reader thread and thread-safe sends."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import httpx
import websocket
from websocket import ABNF

from ingest.config import IngestConfig
from ingest.protocol import registration_body

log = logging.getLogger(__name__)

# The reader wakes this often when idle; the socket timeout also bounds a send to a stuck peer.
SOCKET_TIMEOUT_SECONDS = 5.0

_ids = itertools.count(1)


class RegistrationError(Exception):
    """The gateway did not hand out a ticket (network, 5xx, unexpected body)."""


class AuthFailed(RegistrationError):
    """The gateway rejected DINGTALK_CLIENT_ID / DINGTALK_CLIENT_SECRET (401 authFailed)."""


def register(config: IngestConfig, client: httpx.Client) -> tuple[str, str]:
    """POST /v1.0/gateway/connections/open → (endpoint, ticket); a ticket opens one socket only."""
    try:
        resp = client.post(
            config.registration_url,
            json=registration_body(config.client_id, config.client_secret),
            # Without Accept the real gateway answers in XML.
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=config.http_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        raise RegistrationError(f"registration request failed: {exc!r}") from exc
    body_text = resp.text[:300]
    if resp.status_code in (401, 403) or '"authFailed"' in body_text:
        raise AuthFailed(f"HTTP {resp.status_code}: {body_text}")
    if resp.status_code != 200:
        raise RegistrationError(f"registration answered HTTP {resp.status_code}: {body_text}")
    try:
        body = resp.json()
        return str(body["endpoint"]), str(body["ticket"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RegistrationError(f"registration body has no endpoint/ticket: {body_text}") from exc


def socket_url(endpoint: str, ticket: str) -> str:
    return f"{endpoint}{'&' if '?' in endpoint else '?'}ticket={quote_plus(ticket)}"


class ReadAheadWebSocket(websocket.WebSocket):
    """websocket-client reads a frame as 2 bytes, then the length, then the payload: three
    syscalls per frame. Reading 64 KiB ahead serves many frames per syscall (at 2,000 pushes/s
    the socket reads were a third of the reader thread's CPU). Only the reader thread reads."""

    READ_AHEAD = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ahead = b""
        self._ahead_pos = 0

    def _recv(self, bufsize: int) -> bytes:
        if self._ahead_pos >= len(self._ahead):
            # Raises on timeout or a closed peer, exactly as the unbuffered read does.
            self._ahead = super()._recv(max(bufsize, self.READ_AHEAD))
            self._ahead_pos = 0
        start = self._ahead_pos
        self._ahead_pos = min(start + bufsize, len(self._ahead))
        return self._ahead[start : self._ahead_pos]


def open_socket(endpoint: str, ticket: str, timeout: float) -> websocket.WebSocket:
    """The WebSocket handshake; the gateway checks the ticket here."""
    ws = websocket.create_connection(
        socket_url(endpoint, ticket),
        timeout=timeout,
        class_=ReadAheadWebSocket,
        enable_multithread=True,  # ACKs (hand-off thread), pongs (reader) and pings share it
        skip_utf8_validation=True,  # parse_frame rejects bad UTF-8 itself, with a log line
    )
    ws.settimeout(SOCKET_TIMEOUT_SECONDS)
    return ws


TextHandler = Callable[["StreamConnection", bytes, float], None]
ClosedHandler = Callable[["StreamConnection", str], None]


class StreamConnection:
    """A socket and its reader thread. Only the reader closes the file descriptor."""

    def __init__(self, ws: websocket.WebSocket, on_text: TextHandler, on_closed: ClosedHandler) -> None:
        self.name = f"conn-{next(_ids)}"
        self._ws = ws
        self._on_text = on_text
        self._on_closed = on_closed
        now = time.monotonic()
        self.opened_at = now
        # Life is what the server's application sends: a push or a SYSTEM frame (its ping every
        # ~30 s). Pongs only prove the peer's TCP stack answers: a server that gave the socket up
        # may keep answering them, so they are tracked apart (pong timeout), never as life.
        self.last_frame_at = now
        self.last_ping_sent = now
        self.ping_unanswered_since: float | None = None
        self.draining_since: float | None = None
        self.close_reason = ""
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=f"ingest-{self.name}", daemon=True)

    def __repr__(self) -> str:
        return f"<StreamConnection {self.name}{' draining' if self.draining else ''}>"

    @property
    def draining(self) -> bool:
        return self.draining_since is not None

    def start(self) -> None:
        self._reader.start()

    def send_text(self, text: str) -> bool:
        """Write one text frame; False (and the socket is aborted) when it cannot be written."""
        if self._closed.is_set():
            return False
        try:
            self._ws.send(text)
            return True
        except (websocket.WebSocketException, OSError) as exc:
            # A partial write leaves the stream unusable: give it up, the reader reconnects.
            self.abort(f"send failed: {exc!r}")
            return False

    def send_texts(self, texts: list[str]) -> bool:
        """Write several text frames with one syscall (a batch of ACKs); False if the socket failed."""
        if self._closed.is_set():
            return False
        data = b"".join(ABNF.create_frame(text, ABNF.OPCODE_TEXT).format() for text in texts)
        try:
            with self._ws.lock:  # the same lock websocket-client takes for every frame it sends
                sock = self._ws.sock
                if sock is None:
                    return False
                sock.sendall(data)
            return True
        except OSError as exc:
            self.abort(f"send failed: {exc!r}")
            return False

    def ping(self) -> None:
        self.last_ping_sent = time.monotonic()
        if self.ping_unanswered_since is None:
            self.ping_unanswered_since = self.last_ping_sent
        try:
            self._ws.ping(b"ingest")
        except (websocket.WebSocketException, OSError) as exc:
            self.abort(f"ping failed: {exc!r}")

    def abort(self, reason: str) -> None:
        """Wake the reader at once (shutdown of the TCP socket); it then closes and reports."""
        if not self.close_reason:
            self.close_reason = reason
        self._shutdown_socket()

    def close(self, timeout: float = 1.0) -> None:
        """Clean close: close frame, let the reader see the server's answer, else abort."""
        if self._closed.is_set():
            self.join(timeout)
            return
        if not self.close_reason:
            self.close_reason = "closed by listener"
        try:
            self._ws.send_close(websocket.STATUS_NORMAL)
        except (websocket.WebSocketException, OSError):
            pass
        if not self._closed.wait(timeout):
            self._shutdown_socket()
        self.join(timeout)

    def _shutdown_socket(self) -> None:
        # ws.abort() is a no-op once a close frame was sent; shut the TCP socket down directly.
        sock = self._ws.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join(self, timeout: float | None = None) -> None:
        if self._reader.is_alive() and threading.current_thread() is not self._reader:
            self._reader.join(timeout)

    def _read_loop(self) -> None:
        reason = "closed by server"
        try:
            while True:
                try:
                    opcode, frame = self._ws.recv_data_frame(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    continue  # idle; the watchdog decides whether silence is fatal
                read_at = time.monotonic()
                if opcode == ABNF.OPCODE_TEXT:
                    self.last_frame_at = read_at
                    self._dispatch(frame.data, read_at)
                elif opcode == ABNF.OPCODE_PONG:
                    self.ping_unanswered_since = None
                elif opcode == ABNF.OPCODE_BINARY:
                    log.warning("%s: skipping a binary frame of %d bytes", self.name, len(frame.data))
                elif opcode == ABNF.OPCODE_CLOSE:
                    break
        except (websocket.WebSocketException, OSError, ValueError) as exc:
            reason = f"read failed: {exc!r}"
        finally:
            self._closed.set()
            self._ws.shutdown()
            if not self.close_reason:
                self.close_reason = reason
            self._on_closed(self, self.close_reason)

    def _dispatch(self, data: bytes, read_at: float) -> None:
        try:
            self._on_text(self, data, read_at)
        except Exception:  # a bug in frame handling must not kill the socket's only reader
            log.exception("%s: frame handling failed; frame of %d bytes skipped", self.name, len(data))
