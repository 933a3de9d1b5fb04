"""The skill authors' test kit drives the real chain: sandbox → listener → Celery workers → DB/Redis."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from testkit.personas import alice, bob, mallory
from testkit.pipeline import SANDBOX_TENANT, Bot
from webapp.actions.routing import do_train_router
from webapp.actions.skills import do_update_skill_setting
from webapp.models import RoutedTurn, UserProfile

pytestmark = pytest.mark.slow

ASK = "明天下午三点提醒我交周报"
CACHE = Path(__file__).resolve().parents[2] / "var" / "router" / "test-embeddings.sqlite3"


def test_run_pipeline_answers_each_persona_and_respects_a_disabled_skill(run_pipeline):
    [reply] = run_pipeline("help", user=alice)
    assert "**schedule**" in reply["text"] and "**docsearch**" in reply["text"]
    [reply] = run_pipeline("你好", user=mallory)
    assert reply["text"] == "你说：你好"
    assert run_pipeline("帮助", user=bob)[0]["text"].startswith("**我会这些")
    profiles = {p.nick: p for p in UserProfile.objects.filter(tenant_id=SANDBOX_TENANT)}
    assert profiles[alice.nick].department == "Sales" and profiles[alice.nick].staff_id == alice.staff_id
    assert profiles[bob.nick].roles == ["employee", "hr_admin"]
    assert profiles[mallory.nick].staff_id == "" and profiles[mallory.nick].sender_id

    do_update_skill_setting("admin", SANDBOX_TENANT, "help", False, {})
    time.sleep(1.0)  # SETTINGS_CHECK_SECONDS=0.5 in the workers
    assert run_pipeline("help", user=alice)[0]["text"] == "You said: help"


def test_a_trained_router_is_loaded_at_worker_start_and_routes_real_phrasings(bot: Bot, monkeypatch):
    monkeypatch.setattr("webapp.actions.routing.embedding_cache_path", lambda: CACHE)
    model = do_train_router("test")
    started = time.monotonic()
    bot.start()
    worker = next(p for p in bot.stack.procs if p.role == "worker-pipeline")
    deadline = time.monotonic() + 60
    while "ready" not in (line := _router_line(worker.log_text())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert model.version in line, worker.log_text()[-3000:]
    loaded = float(re.search(r"ready ([\d.]+) s after start", line).group(1))
    print(f"router loaded {loaded:.2f} s after its start; {time.monotonic() - started:.1f} s after spawning")

    # "明天": in the future at any hour (plain "下午三点" is past after 15:00 China time).
    [reply] = bot.run_pipeline(ASK, user=alice)
    assert "交周报" in reply["text"] and "15:00" in reply["text"]
    assert bot.run_pipeline("复读：测试一下", user=bob)[0]["text"] == "你说：复读：测试一下"
    routed = {r.text: r for r in RoutedTurn.objects.all()}
    assert (routed[ASK].skill, routed[ASK].router_version) == (
        "schedule", model.version)
    assert routed["复读：测试一下"].skill == "echo"


def _router_line(log: str) -> str:
    return next((line for line in log.splitlines() if "router " in line and "after start" in line), "")
