"""The tier plugin: tests without service fixtures are `unit`; a unit test reaching a service or a process fails."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INNER_CONFTEST = '''
import socket
import pytest

pytest_plugins = ("tests.support.tiers",)


@pytest.fixture
def redis_prefix():
    """Stands for the real fixture: its name is what makes a test integration."""
    return "p"


@pytest.fixture
def worker_settings(redis_prefix):
    return redis_prefix
'''

INNER_TESTS = '''
import socket
import subprocess
import sys

import pytest


def _connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_pure():
    assert sum([1, 2]) == 3


def test_reaches_redis():
    _connect(6379)


def test_swallows_the_error_of_reaching_rabbitmq():
    try:
        _connect(5672)
    except Exception:
        pass


def test_starts_a_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_uses_redis_through_a_fixture(worker_settings):
    _connect(6379)


@pytest.mark.integration
def test_marked_by_hand():
    _connect(5432)


@pytest.mark.slow
def test_slow():
    _connect(5432)
'''


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: s\n    unit: u\n    integration: i\n")
    return pytester


@pytest.mark.integration  # runs pytest in a subprocess
def test_the_unit_tier_is_the_tests_without_services_and_the_guard_fails_those_that_reach_one(inner):
    result = inner.runpytest_subprocess("-m", "unit", "-rf", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3, deselected=3)
    result.stdout.fnmatch_lines([
        "*unit test test_inner.py::test_reaches_redis connected to ('127.0.0.1', 6379)*",
        "*unit test test_inner.py::test_swallows_the_error_of_reaching_rabbitmq connected to ('127.0.0.1', 5672)*",
        "*unit test test_inner.py::test_starts_a_process started a process (subprocess.Popen*",
    ])


@pytest.mark.integration  # runs pytest in a subprocess
def test_tests_with_service_fixtures_or_the_mark_are_integration_and_not_guarded(inner):
    result = inner.runpytest_subprocess("-m", "integration", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, deselected=5)
