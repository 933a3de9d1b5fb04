"""Operating the bot: every role logs JSON lines naming the message (LOG_FORMAT=json), and the web's
/readyz follows a real listener's connection."""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from testkit.personas import alice
from testkit.stack import ROOT, Stack
from testkit.waits import wait_for
from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow

# A line in the text format (conf/logs.py) or gunicorn's own: neither may appear with LOG_FORMAT=json.
TEXT_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|\[\d{4}-\d\d-\d\d)")
FIELDS = ("msg_id", "stage", "conversation", "tenant")


def _json_lines(text: str) -> list[dict]:
    """Every log line of a role's output, parsed; Celery's start-up banner (printed, not logged) skipped."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
        else:
            assert not TEXT_LINE.match(line), f"a log line not in JSON: {line!r}"
    return lines


def _status(url: str) -> tuple[int, dict]:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def _ready(heartbeat: Path) -> bool:
    # The compose healthcheck of workers and beat, as its own process.
    return subprocess.run([sys.executable, "-m", "workers.health", "--file", str(heartbeat), "--max-age", "5"],
                          cwd=ROOT, capture_output=True, timeout=30).returncode == 0


def test_every_role_logs_json_naming_the_message_and_readyz_follows_the_listener(stack: Stack, tmp_path):
    json_env = {"LOG_FORMAT": "json", "WORKER_HEARTBEAT_SECONDS": "0.5"}
    stack.start_sandbox()
    pipeline = stack.start_pipeline_worker(
        concurrency=2, WORKER_HEARTBEAT_FILE=str(tmp_path / "pipeline.heartbeat"), **json_env)
    skills = stack.start_skills_worker(
        concurrency=1, WORKER_HEARTBEAT_FILE=str(tmp_path / "skills.heartbeat"), **json_env)
    beat = stack.start_beat(WORKER_HEARTBEAT_FILE=str(tmp_path / "beat.heartbeat"), **json_env)
    for role in ("pipeline", "skills", "beat"):
        heartbeat = tmp_path / f"{role}.heartbeat"
        wait_for(functools.partial(_ready, heartbeat), 15, f"{role} ready")
    web, base = stack.start_web(None, **json_env)
    wait_for(lambda: _status(f"{base}/healthz")[0] == 200, 30, "the web to answer /healthz")
    status, body = _status(f"{base}/readyz")
    assert status == 503 and body["checks"]["listener"].startswith("error"), body
    assert body["checks"]["database"] == body["checks"]["broker"] == body["checks"]["redis"] == "ok"

    # DEBUG: the listener logs each ACK (its per-message line); INGEST_HEARTBEAT_SECONDS short for the test.
    listener = stack.start_listener(LOG_LEVEL="DEBUG", INGEST_HEARTBEAT_SECONDS="0.5", **json_env)
    client = sandbox_control(stack)
    client.wait_for_state(connections=1, timeout=30)
    wait_for(lambda: _status(f"{base}/readyz")[0] == 200, 15, "/readyz to see the connected listener")

    sent = alice.send(client, "帮助")
    client.wait_for_replies(1, msg_id=sent["msgId"], timeout=60)
    wait_for(lambda: '"replied in' in pipeline.log_text(), 10, "deliver's line")

    stack.kill(listener, signal.SIGTERM)  # a clean stop removes its key: not ready at once
    status, body = _status(f"{base}/readyz")
    assert status == 503 and "none running" in body["checks"]["listener"], body

    def about_the_message(proc) -> list[dict]:
        return [line for line in _json_lines(proc.log_text()) if line["msg_id"] == sent["msgId"]]

    for proc in (listener, pipeline, skills, beat, web):
        lines = _json_lines(proc.log_text())
        assert lines, f"{proc.role} logged nothing"
        for line in lines:
            assert set(FIELDS) <= set(line), f"{proc.role}: {line}"
    listener_lines, pipeline_lines = about_the_message(listener), about_the_message(pipeline)
    assert listener_lines and pipeline_lines
    for line in listener_lines + pipeline_lines:
        assert line["conversation"] == sent["conversationId"], line
        assert line["tenant"] not in ("", "-"), line
    assert {line["stage"] for line in listener_lines} <= {"ingest", "handoff"}
    assert "deliver" in {line["stage"] for line in pipeline_lines}
    # gunicorn's access lines are JSON too (its own loggers go through the shared handler)
    assert any("/readyz" in line["message"] and line["logger"] == "gunicorn.access"
               for line in _json_lines(web.log_text()))
