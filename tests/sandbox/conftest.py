"""Fixtures: an in-process sandbox on a free port, its control client, and a raw Stream client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from sandbox import SandboxServer
from sandbox.client import SandboxClient
from tests.sandbox.stream import StreamClient


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    srv = SandboxServer(port=0, redeliver_after=60.0, ping_interval=0).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def control(server: SandboxServer) -> Iterator[SandboxClient]:
    with SandboxClient(server.base_url) as client:
        yield client


@pytest.fixture
def stream(server: SandboxServer) -> Iterator[Callable[..., StreamClient]]:
    """Factory of connected Stream clients (websocket-client, like the listener); closed after the test."""
    opened: list[StreamClient] = []

    def connect(**kw: object) -> StreamClient:
        client = StreamClient(server.base_url, **kw)  # type: ignore[arg-type]
        client.connect()
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()
