"""`make run` (bin/run) starts every role of the Procfile, with the repository on every role's import path."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = (ROOT / "bin" / "run").read_text()
# Started only in sandbox mode / without an LLM configured (bin/run adds them itself).
STAND_INS = {"sandbox", "llm-stub"}


def procfile_roles() -> set[str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {line.split(":", 1)[0] for line in lines if line.strip() and not line.startswith("#")}


def test_every_procfile_role_is_started():
    started = set(re.search(r'^roles="([^"]+)"$', RUN, re.M).group(1).split())
    assert started | STAND_INS == procfile_roles()


def test_the_repository_is_on_every_roles_import_path():
    # celery -A puts the working directory on sys.path only while it loads the app; the workers import
    # skills and the webapp later, from their signal handlers (a role without this dies at start).
    assert 'export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"' in RUN
    assert RUN.index("export PYTHONPATH") < RUN.index("exec .venv/bin/python bin/supervise")
    assert "PYTHONPATH=/app" in (ROOT / "docker" / "Dockerfile").read_text()
