"""Run an aiohttp application on a background thread, so tests and benches can host a peer in-process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedAppServer:
    """One aiohttp app served on 127.0.0.1 from its own event loop thread.

    `start()` returns once the socket listens (port 0 picks a free port); `stop()` closes the
    site and waits for the thread. `on_stop` coroutines run on the loop before the runner
    cleans up, so handlers that wait on purpose (a hanging peer) can be released first.
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("server not started")
        return self._loop

    def start(self, timeout: float = 10.0) -> ThreadedAppServer:
        self._thread = threading.Thread(target=self._run, name=f"aiohttp-{id(self):x}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("aiohttp server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"aiohttp server failed to start: {self._error}") from self._error
        return self

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run a plain function on the server loop (state shared with handlers stays single-threaded)."""

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop = None
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported to start() in the calling thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _startup(self) -> None:
        # handler_cancellation: a client that gives up (timeout) must not leave its handler running.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        for hook in self.on_stop:
            await hook()
        if self._runner is not None:
            await self._runner.cleanup()
