"""The listener's HTTP port: /metrics for Prometheus, /livez and /readyz for its supervisor or orchestrator."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Health:
    """`live`: the process can still ACK (its hand-off thread runs). `ready`: it is taking pushes
    and keeping them (live, a Stream connection open, the journal not full). `detail` says why."""

    live: bool
    ready: bool
    detail: dict[str, Any] = field(default_factory=dict)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds would drown the log


class HealthServer:
    """Serves `registry` and the answers of `check` on one port, on a background thread."""

    def __init__(self, registry: CollectorRegistry, check: Callable[[], Health]) -> None:
        self._metrics = make_wsgi_app(registry)
        self._check = check
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> int | None:
        """Listen on `port` (0 disables); returns the port served, if any."""
        if port <= 0:
            return None
        server = make_server(addr, port, self._app, server_class=_Server, handler_class=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="ingest-http", daemon=True)
        self._thread.start()
        return int(server.server_port)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path in ("/livez", "/readyz"):
            health = self._check()
            ok = health.live if path == "/livez" else health.ready
            body = json.dumps({"live": health.live, "ready": health.ready, **health.detail}).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return self._metrics(environ, start_response)
