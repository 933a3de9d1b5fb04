"""Helpers of the gateway end-to-end tests: start the bot with the probe skill, read probe reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.client import SandboxClient
from testkit.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.e2e.gateway_app"

# The Stream listener lives on its own branch until merged; without it there is no real chain.
needs_listener = pytest.mark.skipif(
    not (ROOT / "ingest" / "__main__.py").exists(),
    reason="the Stream listener (`python -m ingest`, branch ingest) is not in this tree yet",
)


def start_bot(bot: Stack, *, pipeline_workers: int = 1, skills_workers: int = 1, skills_pool: str = "threads",
              skills_concurrency: int = 8, pipeline_concurrency: int = 8, **env: str) -> SandboxClient:
    """Sandbox, listener and workers (running the probe skill); returns a control client."""
    bot.extra_env.update(env)
    bot.start_sandbox(redeliver_after=60)
    for _ in range(pipeline_workers):
        bot.start_pipeline_worker(concurrency=pipeline_concurrency, app=APP)
    for _ in range(skills_workers):
        bot.start_skills_worker(concurrency=skills_concurrency, pool=skills_pool, app=APP)
    bot.start_listener()
    client = SandboxClient(bot.sandbox_url)
    client.wait_for_state(connections=1, timeout=30)
    return client


def report(reply: dict[str, Any]) -> dict[str, Any]:
    """The probe's JSON report inside a reply's text."""
    text = str(reply.get("text") or "")
    assert text.startswith("PROBE "), f"not a probe report: {text[:200]!r}"
    return json.loads(text[len("PROBE "):])
