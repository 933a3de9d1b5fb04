"""Start a bot whose workers route by keywords to the built-in skills (tests.support.worker_app)."""

from __future__ import annotations

from typing import Any

from sandbox.client import SandboxClient
from testkit.stack import PIPELINE_QUEUES, SKILL_QUEUES, Proc, Stack
from testkit.waits import wait_for

TEST_APP = "tests.support.worker_app"
CARD_TEMPLATE = "e2e-ai-card.schema"


def start_pipeline(bot: Stack, **env: str) -> Proc:
    return bot.start_worker("worker-pipeline", PIPELINE_QUEUES, pool="threads", concurrency=8, app=TEST_APP, **env)


def start_skills(bot: Stack, **env: str) -> Proc:
    return bot.start_worker("worker-skills", SKILL_QUEUES, pool="prefork", concurrency=2, app=TEST_APP, **env)


def run_bot(bot: Stack, **env: str) -> SandboxClient:
    """Sandbox, keyword-routing pipeline and skills workers, listener; `env` for every role."""
    bot.extra_env.update(env)
    bot.start_sandbox(redeliver_after=60)
    start_pipeline(bot)
    start_skills(bot)
    bot.start_listener()
    client = SandboxClient(bot.sandbox_url)
    client.wait_for_state(connections=1, timeout=30)
    return client


def card_of(client: SandboxClient, out_track_id: str) -> dict[str, Any] | None:
    """The sandbox's view of one card, or None before it exists."""
    for card in client.cards():
        if card["outTrackId"] == out_track_id:
            return client.card(out_track_id)
    return None


def finished_card(client: SandboxClient, out_track_id: str, timeout: float = 30) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        card = card_of(client, out_track_id)
        return card if card and card["status"] in ("finished", "failed") else None

    return wait_for(done, timeout, f"card {out_track_id} to be finalized")
