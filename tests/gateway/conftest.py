"""Gateway test fixtures: the workers' settings/sandbox fixtures, plus a media root per test."""

from __future__ import annotations

import pytest

from tests.workers.conftest import (  # noqa: F401 - fixtures shared with the worker tests
    dingtalk_sandbox,
    redis_conn,
    sandbox_client,
    sandbox_settings,
    worker_settings,
)


@pytest.fixture
def media_root(tmp_path, monkeypatch):
    """Files users send land in this test's own folder."""
    from conf.settings import get_settings

    root = tmp_path / "media"
    monkeypatch.setenv("MEDIA_ROOT", str(root))
    get_settings.cache_clear()
    return root
