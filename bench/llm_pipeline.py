"""Bench: concurrent LLM answers through the whole chain into AI cards (sandbox + listener + workers).

Each message goes socket → broker → preprocess → run_skill (the stub LLM streams into an AI card
within the shared card budget) → postprocess → deliver. Prints JSON: finalized cards, card calls
per answer, 403 responses, time from the message to its card's first visible text and to its
final update, and the CPU of the bot's processes.

    .venv/bin/python bench/llm_pipeline.py [--answers 50] [--qps 20] [--skills-pool threads --skills-concurrency 50]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.llm_stream import max_per_second, percentile, serve
from bench.pipeline import cpu, prepare_database
from sandbox.client import SandboxClient
from testkit import services
from testkit.stack import PIPELINE_QUEUES, SKILL_QUEUES, Stack
from workers.dingtalk.card_streamer import out_track_id_for

APP = "bench.llm_app"


def card_times(card: dict[str, Any], created_at: float) -> tuple[float | None, float | None]:
    """(first visible text, final update) as epoch seconds."""
    first = created_at if card["cardData"]["cardParamMap"].get("content") else None
    final = None
    for update in card["updates"]:
        if update["kind"] != "streaming" or update["duplicate"]:
            continue
        if first is None and update["content"]:
            first = update["at"]
        if update["isFinalize"] and final is None:
            final = update["at"]
    return first, final


def run(args: argparse.Namespace) -> dict[str, Any]:
    database_url = prepare_database()
    stub = {"tokens": args.tokens, "first_token_delay": args.first_token_delay,
            "inter_token_delay": args.inter_token_delay}
    with serve("sandbox.llm", "--config", json.dumps(stub)) as llm_url, \
            services.rabbit_vhost("dtbot-bench-llm") as broker_url, services.redis_namespace() as prefix, \
            tempfile.TemporaryDirectory() as logs:
        stack = Stack(broker_url=broker_url, database_url=database_url, redis_prefix=prefix, log_dir=Path(logs),
                      extra_env={"DINGTALK_AI_CARD_TEMPLATE_ID": "bench-ai-card", "LLM_BASE_URL": llm_url + "/v1",
                                 "LLM_MODEL": "stub-llm", "DINGTALK_QPS_CARD": str(args.qps),
                                 "LOG_LEVEL": "WARNING"})
        try:
            stack.start_sandbox(redeliver_after=120)
            client = SandboxClient(stack.sandbox_url)
            client.configure(qps_limits={"card": args.qps})
            procs = [
                stack.start_worker("worker-pipeline", PIPELINE_QUEUES, pool="threads", concurrency=8, app=APP),
                stack.start_worker("worker-skills", SKILL_QUEUES, pool=args.skills_pool,
                                   concurrency=args.skills_concurrency, app=APP),
                stack.start_listener(),
            ]
            client.wait_for_state(connections=1, timeout=30)
            cpu0 = cpu(procs)
            sent = client.send_batch([{"text": f"Question {i}: how do streamed cards work?", "user_id": f"user{i}"}
                                      for i in range(args.answers)])
            wanted = {out_track_id_for(m["msgId"]): m["msgId"] for m in sent}
            deadline = time.time() + args.timeout
            while time.time() < deadline:
                cards = [c for c in client.cards() if c["outTrackId"] in wanted]
                if len(cards) == len(wanted) and all(c["status"] in ("finished", "failed") for c in cards):
                    break
                time.sleep(0.25)
            used = cpu(procs) - cpu0
            injected = {p["msgId"]: p["injectedAt"] for p in client.pushes()}
            created = {r["out_track_id"]: r["at"] for r in client.replies(via="card")}
            details = [client.card(c["outTrackId"]) for c in client.cards() if c["outTrackId"] in wanted]
            state = client.state()
        finally:
            stack.stop()
    firsts, finals, calls, accepted, creates = [], [], [], [], []
    for card in details:
        start = injected[wanted[card["outTrackId"]]]
        creates.append(created[card["outTrackId"]] - start)
        first, final = card_times(card, created[card["outTrackId"]])
        if first is not None:
            firsts.append(first - start)
        if final is not None:
            finals.append(final - start)
        calls.append(1 + sum(1 for u in card["updates"] if not u.get("duplicate")))  # the create counts
        accepted += [created[card["outTrackId"]]] + [u["at"] for u in card["updates"] if not u.get("duplicate")]
    return {
        "answers": args.answers,
        "skills_pool": f"{args.skills_pool} x {args.skills_concurrency}",
        "llm_answer_seconds": round(args.first_token_delay + args.tokens * args.inter_token_delay, 2),
        "cards": len(details),
        "finalized": sum(1 for c in details if c["status"] == "finished"),
        "failed": sum(1 for c in details if c["status"] == "failed"),
        "card_qps_limit": args.qps,
        "card_calls_per_answer": round(sum(calls) / max(1, len(calls)), 2),
        "card_calls_max_in_any_second": max_per_second(accepted),
        "responses_403": state.get("throttled"),
        "card_created_s": {"p50": percentile(creates, 50), "p99": percentile(creates, 99)},
        "first_visible_text_s": {"p50": percentile(firsts, 50), "p99": percentile(firsts, 99)},
        "card_finalized_s": {"p50": percentile(finals, 50), "p99": percentile(finals, 99),
                             "max": round(max(finals), 2) if finals else None},
        "bot_cpu_s": round(used, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=50)
    parser.add_argument("--qps", type=float, default=20.0, help="card API limit (sandbox) and shared budget")
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument("--inter-token-delay", type=float, default=0.05)
    parser.add_argument("--skills-pool", default="threads", choices=["threads", "prefork"])
    parser.add_argument("--skills-concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=300)
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
