"""Test tiers: every fast test is `unit` or `integration`, decided by the fixtures it uses; unit tests are held to it.

A test is `integration` when it requests a fixture that reaches a real service (see
SERVICE_FIXTURES; pytest's fixture closure makes that transitive, so `worker_settings` counts
through `redis_prefix`), carries `django_db`, or is marked `integration` by hand (it reaches a
service or starts a process some other way). Every other test that is not `slow` is `unit`:
`make test-unit` (`pytest -m unit`) runs those without PostgreSQL, Redis or RabbitMQ.

The guard proves the split in every run: while a unit test runs, connecting to a service port or
starting a process raises `ServiceUsed` (through an audit hook, so no code path escapes it) and
fails the test, naming what it should have requested. Threads that were already running when the
test started (another test's in-process sandbox, say) are not the test's doing and are left alone.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

# Fixtures whose closure means "this test needs a real service" (root fixtures; the rest follow).
SERVICE_FIXTURES = frozenset({
    "redis_prefix",       # Redis namespace (worker_settings, redis_conn, sandbox_settings, ...)
    "amqp_url",           # RabbitMQ vhost (celery_broker, broker_queues, ...)
    "redis_broker_url",   # Redis as Celery broker
    "pgvector_server",    # an embedded PostgreSQL process
    "django_db_setup",    # PostgreSQL through pytest-django (db, transactional_db, live_server, admin_client)
})
SERVICE_PORTS = frozenset({5432, 6379, 5672, 15672})
URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "VECTOR_DATABASE_URL")
# Helpers libraries run for themselves (platform.processor() runs `uname -p`, the OpenAI client asks it).
HARMLESS_PROGRAMS = frozenset({"uname"})
PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn",
                            "os.exec", "os.fork", "os.forkpty"})


class ServiceUsed(RuntimeError):
    """A unit test reached a real service or started a process."""


def pytest_configure(config: pytest.Config) -> None:
    _Guard.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow"):
            continue
        if _needs_services(item):
            if not item.get_closest_marker("integration"):
                item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


def _needs_services(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & SERVICE_FIXTURES) or any(
        item.get_closest_marker(m) for m in ("integration", "django_db"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _guarded(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _guarded(item)


def _guarded(item: pytest.Item) -> Iterator[None]:
    # Not in teardown: fixtures of a wider scope (a session's RabbitMQ vhost) are finalized in the
    # teardown of whichever test happens to run last.
    if item.get_closest_marker("unit") is None:
        yield
        return
    _Guard.arm(item.nodeid)
    try:
        yield
    finally:
        _Guard.disarm()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A unit test that touched a service fails, even when the code under test swallowed the error."""
    report = yield
    if _Guard.violations and _Guard.owner == item.nodeid and report.outcome != "skipped":
        report.outcome = "failed"
        report.longrepr = "\n".join(_Guard.violations)
        _Guard.violations = []
    return report


class _Guard:
    """The audit hook; armed only while a unit test runs (audit hooks cannot be removed)."""

    test: str | None = None
    owner: str | None = None  # the test the violations belong to (outlives disarm until reported)
    violations: list[str] = []
    bystanders: frozenset[int] = frozenset()  # threads that predate the test
    ports: frozenset[int] = SERVICE_PORTS
    installed = False

    @classmethod
    def install(cls) -> None:
        if cls.installed:
            return
        ports = set(SERVICE_PORTS)
        for name in URL_VARIABLES:
            value = os.environ.get(name, "")
            try:
                port = urlsplit(value).port if value else None
            except ValueError:
                port = None
            if port:
                ports.add(port)
        cls.ports = frozenset(ports)
        sys.addaudithook(cls._hook)
        cls.installed = True

    @classmethod
    def arm(cls, nodeid: str) -> None:
        main = threading.main_thread().ident
        cls.bystanders = frozenset(t.ident for t in threading.enumerate() if t.ident != main and t.ident)
        if cls.owner != nodeid:
            cls.owner, cls.violations = nodeid, []
        cls.test = nodeid

    @classmethod
    def disarm(cls) -> None:
        cls.test = None

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if cls.test is None or threading.get_ident() in cls.bystanders:
            return
        if event == "socket.connect":
            address = args[1]
            port = address[1] if isinstance(address, tuple) and len(address) >= 2 else None
            if port in cls.ports or (isinstance(address, str) and ".s.PGSQL." in address):
                cls._refuse(f"unit test {cls.test} connected to {address!r}: request the fixture of "
                            f"that service ({', '.join(sorted(SERVICE_FIXTURES))}) or mark it integration")
        elif event in PROCESS_EVENTS and not (
                event == "subprocess.Popen" and os.path.basename(str(args[0])) in HARMLESS_PROGRAMS):
            cls._refuse(f"unit test {cls.test} started a process ({event} {args[:2]!r}): "
                        "mark it integration (or slow)")

    @classmethod
    def _refuse(cls, why: str) -> None:
        cls.violations.append(why)
        raise ServiceUsed(why)
