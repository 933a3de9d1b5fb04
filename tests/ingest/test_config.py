"""IngestConfig comes from Settings, and the listener process never loads Django."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conf.settings import load
from ingest.config import IngestConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_config_takes_the_ingest_knobs_from_settings():
    settings = load({
        "DINGTALK_CLIENT_ID": " id ", "DINGTALK_CLIENT_SECRET": "secret",
        "DINGTALK_OPENAPI_ENDPOINT": "http://127.0.0.1:9/", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
        "INGEST_BUFFER_MAX": "7", "INGEST_WATCHDOG_SECONDS": "2.5", "INGEST_METRICS_PORT": "0",
    })
    config = IngestConfig.from_settings(settings, drain_grace_seconds=1.0)
    assert config.client_id == "id" and config.client_secret == "secret"
    assert config.registration_url == "http://127.0.0.1:9/v1.0/gateway/connections/open"
    assert config.broker_is_redis
    assert (config.buffer_max, config.watchdog_seconds, config.metrics_port) == (7, 2.5, 0)
    assert config.drain_grace_seconds == 1.0


@pytest.mark.slow
def test_importing_the_listener_does_not_load_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys, ingest.listener, ingest.__main__\n"
        "loaded = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == ""


@pytest.mark.slow
def test_django_still_imports_after_the_listener_in_the_same_process():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = "import ingest.listener, django.utils.functional, kombu.utils.json\nprint('ok')\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "ok"
