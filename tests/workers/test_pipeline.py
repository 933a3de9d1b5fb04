"""The workers' Celery app and chain: tasks load, no Django fixup, no user text in task headers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workers.celery import app
from workers.pipeline import build_chain

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration  # a fresh interpreter
def test_building_a_chain_loads_no_django_no_task_module_and_no_skills():
    # Replays and publishers build chains in processes that must not pull in Django settings,
    # the webapp, the task module or the skills.
    code = (
        "import sys, workers.pipeline as p; p.build_chain({'msg_id': 'm'}); "
        "bad = [m for m in sys.modules if m.startswith(('webapp', 'workers.tasks', 'skills', "
        "'django.db', 'django.conf'))]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_celery_workers_load_the_task_module():
    assert "workers.tasks" in app.conf.imports


def test_the_app_has_no_automatic_django_fixup_that_reconnects_around_every_task():
    assert not app.fixups


def test_published_stages_do_not_carry_the_user_text_in_their_headers():
    sig = build_chain({"msg_id": "m", "payload": {"text": {"content": "secret salary"}}})
    for task_sig in sig.tasks:
        assert task_sig.options["argsrepr"] == "(<payload>,)"
