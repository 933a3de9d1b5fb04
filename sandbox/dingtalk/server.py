"""App factory and `SandboxServer`: run the sandbox in-process (background thread) or as `python -m sandbox`."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from sandbox.dingtalk import card_taps, cards, chat, control, openapi, robots
from sandbox.dingtalk.context import SANDBOX_KEY, Sandbox
from sandbox.dingtalk.state import SandboxConfig


def build_app(config: SandboxConfig) -> web.Application:
    """The aiohttp application serving the gateway, the OpenAPI, the control API and the chat page."""
    sb = Sandbox(config)
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[SANDBOX_KEY] = sb
    app.router.add_post("/v1.0/gateway/connections/open", sb.gateway.register)
    app.router.add_get("/connect", sb.gateway.connect)
    openapi.add_routes(app)
    robots.add_routes(app)
    cards.add_routes(app)
    card_taps.add_routes(app)
    control.add_routes(app)
    chat.add_routes(app)
    app.on_startup.append(sb.gateway.start)
    app.on_shutdown.append(sb.gateway.shutdown)
    return app


async def start_app(config: SandboxConfig, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Bind the sandbox; returns the runner and the real port (port 0 picks a free one)."""
    app = build_app(config)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1])
    public_host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    app[SANDBOX_KEY].base_url = f"http://{public_host}:{bound}"
    return runner, bound


class SandboxServer:
    """The sandbox on its own event loop in a background thread, for tests and benchmarks."""

    def __init__(
        self,
        port: int = 0,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",
        redeliver_after: float = 16.0,
        ping_interval: float = 30.0,
        webhook_ttl: float = 5400.0,
        host: str = "127.0.0.1",
        **config: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.config = SandboxConfig(
            client_id=client_id,
            client_secret=client_secret,
            redeliver_after=redeliver_after,
            ping_interval=ping_interval,
            webhook_ttl=webhook_ttl,
            **config,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def sandbox(self) -> Sandbox:
        """The live state object. It belongs to the server's loop: read it, don't mutate it."""
        assert self._runner is not None, "server not started"
        return self._runner.app[SANDBOX_KEY]

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Start serving; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.port = loop.run_until_complete(
                    start_app(self.config, self.host, self.port)
                )
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="dingtalk-sandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("sandbox did not start in time")
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = self._thread = None

    def call(self, fn: Any, *args: Any) -> Any:
        """Run a plain function on the server's loop and return its result (thread-safe peek/poke)."""
        assert self._loop is not None, "server not started"

        async def invoke() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(10)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
