"""A thread-based TCP proxy that tests cut and restore to simulate an unreachable service."""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`; `cut()` drops every connection and refuses new ones.

    While cut, connections are accepted and closed at once (the client sees a reset/EOF, as when a
    broker dies), so clients fail fast instead of hanging in connect.
    """

    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5672, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._server = socket.create_server(("127.0.0.1", port))
        self._server.settimeout(0.2)
        self.port: int = self._server.getsockname()[1]
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"tcpproxy-{self.port}", daemon=True)

    def url_for(self, url: str) -> str:
        """`url` with its host:port replaced by this proxy (amqp://u:p@host:port/vhost)."""
        host_port = f"{self.target[0]}:{self.target[1]}"
        if host_port not in url:
            raise ValueError(f"{url!r} does not point at {host_port}")
        return url.replace(host_port, f"127.0.0.1:{self.port}", 1)

    def start(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore()`."""
        self._cut.set()
        self._close_pairs()

    def restore(self) -> None:
        self._cut.clear()

    def stop(self) -> None:
        self._stop.set()
        self._close_pairs()
        self._acceptor.join(2)
        self._server.close()
        for thread in list(self._threads):
            thread.join(2)

    def _close_pairs(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                with contextlib.suppress(OSError):
                    client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError as exc:
                log.debug("proxy %d: upstream unreachable: %r", self.port, exc)
                client.close()
                continue
            self.accepted += 1
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._pairs.append((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        """Copy both directions until either side closes (one thread per connection pair)."""
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
            with self._lock:
                self._pairs = [p for p in self._pairs if p != (a, b)]


@contextlib.contextmanager
def tcp_proxy(target_host: str = "127.0.0.1", target_port: int = 5672) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
