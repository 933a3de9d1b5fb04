"""Fault tests reuse the end-to-end stack fixtures."""

from tests.e2e.conftest import pytest_runtest_makereport, redis_stack, stack  # noqa: F401
