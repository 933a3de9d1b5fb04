"""Fixtures of every test folder: this test's worker resources (settings bound to its Redis namespace),
a broker vhost, the DingTalk sandbox, a media root."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from conf.settings import Settings, get_settings
from contract.pipeline import STAGES
from workers import resources as worker_resources
from workers.clock import SYSTEM_CLOCK, Clock
from workers.resources import Resources


class TestResources:
    """The worker resources of one test: environment overrides, then a fresh container built from
    them and installed as the process's (`.current`); everything is undone after the test."""

    __test__ = False  # not a test class, whatever its name says

    def __init__(self, **env: str) -> None:
        self._env = pytest.MonkeyPatch()
        self.clock: Clock = SYSTEM_CLOCK
        self.current = self._install(env, None)

    def set(self, clock: Clock | None = None, **env: Any) -> Resources:
        """Apply these environment overrides (and clock), install a fresh container for them."""
        return self._install(env, clock)

    def _install(self, env: dict[str, Any], clock: Clock | None) -> Resources:
        for name, value in env.items():
            self._env.setenv(name, str(value))
        if clock is not None:
            self.clock = clock
        get_settings.cache_clear()
        previous = getattr(self, "current", None)
        self.current = Resources(get_settings(), clock=self.clock)
        worker_resources.install(self.current)
        if previous is not None:
            self.current.router = previous.router  # installed by the test; settings do not change it
            previous.router = None
            previous.close()
        return self.current

    @property
    def settings(self) -> Settings:
        return self.current.settings

    def close(self) -> None:
        self.current.router = None  # a test that started a router thread stops it itself
        self.current.close()
        worker_resources.install(None)
        self._env.undo()
        get_settings.cache_clear()


@pytest.fixture
def resources(redis_prefix: str) -> Iterator[TestResources]:
    """This test's worker resources: Redis keys under its own prefix (cleaned up afterwards), test
    DingTalk credentials; `resources.set(NAME=value, clock=...)` for more, `resources.current` is
    the installed container."""
    fixture = TestResources(REDIS_KEY_PREFIX=redis_prefix, DINGTALK_CLIENT_ID="test-client",
                            DINGTALK_CLIENT_SECRET="test-secret")
    yield fixture
    fixture.close()


@pytest.fixture
def worker_settings(resources: TestResources) -> Settings:
    """The Settings of this test's resources."""
    return resources.settings


@pytest.fixture
def personal_data_stores() -> Iterator[object]:
    """The workers' per-user stores registered in this process, as manage.py and the workers do."""
    from webapp.actions.personal_data import registry
    from workers.state.personal_data import STORES, register_stores

    register_stores()
    yield registry
    for store in STORES:
        registry.unregister(store.name)


@pytest.fixture
def redis_conn(resources: TestResources):
    return resources.current.redis


@pytest.fixture(scope="session")
def celery_broker(amqp_url: str) -> Iterator[str]:
    """Point this process's publishers at the private vhost: the workers' Celery app and, through
    CELERY_BROKER_URL, the webapp's (replays)."""
    from workers.celery import app

    previous = app.conf.broker_url
    app.conf.broker_url = amqp_url
    app._pool = None
    app.amqp._producer_pool = None
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CELERY_BROKER_URL", amqp_url)
        get_settings.cache_clear()
        yield amqp_url
    get_settings.cache_clear()
    app.conf.broker_url = previous
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_queues(celery_broker):
    """The private vhost, with the pipeline queues emptied before and after the test."""
    from kombu import Connection

    from workers.celery import app

    with Connection(celery_broker) as conn:
        channel = conn.default_channel
        for queue in app.conf.task_queues:
            queue(channel).declare()

        def drain() -> list[dict]:
            """Every message waiting in the pipeline queues: {queue, task, args, chain}."""
            found = []
            for stage in STAGES:
                while (message := channel.basic_get(stage.queue, no_ack=True)) is not None:
                    args, _, embed = json.loads(message.body)
                    found.append({"queue": stage.queue, "task": message.headers["task"],
                                  "args": args, "chain": embed.get("chain")})
            return found

        drain()
        yield drain
        with contextlib.suppress(Exception):
            drain()


@pytest.fixture(scope="session")
def dingtalk_sandbox():
    """The project's DingTalk stand-in, serving in a background thread for this session."""
    from sandbox.dingtalk.server import SandboxServer

    server = SandboxServer(port=0).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox_client(dingtalk_sandbox):
    """A control client; the sandbox's records and limits are reset around each test."""
    from sandbox.client import SandboxClient

    with SandboxClient(dingtalk_sandbox.base_url) as client:
        client.reset()
        client.configure(qps_limits={})
        client.fault("accept_auth")
        client.fault("heal_sends")
        yield client
        client.configure(qps_limits={})
        client.fault("heal_sends")


@pytest.fixture
def sandbox_settings(resources: TestResources, dingtalk_sandbox) -> Settings:
    """This test's settings, with DingTalk calls going to the sandbox under its credentials."""
    return resources.set(
        DINGTALK_OPENAPI_ENDPOINT=dingtalk_sandbox.base_url, DINGTALK_CLIENT_ID=dingtalk_sandbox.config.client_id,
        DINGTALK_CLIENT_SECRET=dingtalk_sandbox.config.client_secret, HTTP_TIMEOUT_SECONDS="2",
    ).settings


@pytest.fixture
def media_root(resources: TestResources, tmp_path):
    """Files users send land in this test's own folder."""
    root = tmp_path / "media"
    resources.set(MEDIA_ROOT=root)
    return root
