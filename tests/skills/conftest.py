"""Skill tests reuse the worker fixtures (settings on a Redis namespace) and the end-to-end stack."""

from tests.e2e.conftest import pytest_runtest_makereport, stack  # noqa: F401
from tests.workers.conftest import redis_conn, worker_settings  # noqa: F401
