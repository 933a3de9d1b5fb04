"""Fixtures of every test folder: settings bound to this test's Redis namespace, a broker vhost, the DingTalk sandbox, a media root."""

from __future__ import annotations

import contextlib
import json
from typing import Iterator

import pytest

from conf.settings import Settings, get_settings
from workers import resources
from contract.pipeline import STAGES


@pytest.fixture
def worker_settings(redis_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings whose Redis keys live under this test's prefix (cleaned up afterwards)."""
    monkeypatch.setenv("REDIS_KEY_PREFIX", redis_prefix)
    monkeypatch.setenv("DINGTALK_CLIENT_ID", "test-client")
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", "test-secret")
    get_settings.cache_clear()
    resources.reset_clients()
    yield get_settings()
    get_settings.cache_clear()
    resources.reset_clients()


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
def redis_conn(worker_settings: Settings):
    return resources.redis_client()


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
def sandbox_settings(worker_settings, dingtalk_sandbox, monkeypatch) -> Settings:
    """worker_settings, with DingTalk calls going to the sandbox under its credentials."""
    monkeypatch.setenv("DINGTALK_OPENAPI_ENDPOINT", dingtalk_sandbox.base_url)
    monkeypatch.setenv("DINGTALK_CLIENT_ID", dingtalk_sandbox.config.client_id)
    monkeypatch.setenv("DINGTALK_CLIENT_SECRET", dingtalk_sandbox.config.client_secret)
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "2")
    get_settings.cache_clear()
    resources.reset_clients()
    return get_settings()


@pytest.fixture
def media_root(tmp_path, monkeypatch):
    """Files users send land in this test's own folder."""
    root = tmp_path / "media"
    monkeypatch.setenv("MEDIA_ROOT", str(root))
    get_settings.cache_clear()
    return root
