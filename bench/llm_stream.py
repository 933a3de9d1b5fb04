"""Bench: concurrent streamed LLM answers → AI cards within a shared card-update QPS budget; prints JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
import redis

from sandbox.client import SandboxClient
from skills.api import Reply, Turn
from skills.llm_chat import LLMChatConfig, LLMChatSkill
from testkit.services import free_port
from workers.dingtalk.card_client import CardClient, CardTarget
from workers.dingtalk.card_streamer import CardStreamer, StreamResult
from workers.dingtalk.ratebudget import RateBudget

BENCH_APP = ("bench-client-id", "bench-client-secret")  # the sandbox's app; the client id is the robot code


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))], 3)


def max_per_second(stamps: list[float]) -> int:
    stamps, best, lo = sorted(stamps), 0, 0
    for hi, at in enumerate(stamps):
        while at - stamps[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@contextlib.contextmanager
def serve(module: str, *args: str) -> Iterator[str]:
    """A peer in its own process (as in production: the LLM and DingTalk are other machines)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(url + "/", timeout=0.5)  # any answer means it listens
                break
            except httpx.TransportError as exc:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{module} did not start") from exc
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def answer_batch(indices: list[int], llm_url: str, card_url: str, token: str, prefix: str,
                 opts: dict[str, Any], start_at: float) -> dict[str, Any]:
    """One worker process: a thread per answer, sharing the Redis budget with the other processes."""
    rdb = redis.Redis.from_url(opts["redis_url"])
    sent_ok: list[float] = []

    def record(response: httpx.Response) -> None:
        if response.status_code < 400:
            sent_ok.append(time.time())

    limits = httpx.Limits(max_connections=len(indices) * 2)
    with httpx.Client(timeout=10.0, limits=limits, event_hooks={"response": [record]}) as http:
        skill = LLMChatSkill(LLMChatConfig(base_url=llm_url + "/v1", model="stub-llm"))
        budget = RateBudget(rdb, prefix, {"card": opts["qps"]})
        client = CardClient(http, card_url, lambda: token, budget)
        streamer = CardStreamer(client, "bench-template", set_flow_status=opts["flow_status"])
        results: list[dict[str, Any]] = []
        errors: list[str] = []

        def answer(i: int) -> None:
            turn = Turn(msg_id=f"bench-{i}", tenant_id="t", conversation_id=f"cid-{i}", conversation_type="2",
                        user_id=f"staff-{i}", text=f"Question number {i}: how do streamed cards work?", locale="en")
            target = CardTarget.from_turn(turn, opts["robot_code"])
            time.sleep(max(0.0, start_at - time.time()))
            try:
                chunks = skill.execute(turn)
                if isinstance(chunks, Reply):  # not configured or refused: no stream to measure
                    raise RuntimeError(f"no stream: {chunks.text}")
                result: StreamResult = streamer.stream(turn.msg_id, target, chunks, locale="en")
                results.append({"ok": result.status == "finished" and result.finalized,
                                "first_visible_s": result.first_visible_s, "elapsed_s": result.elapsed_s})
            except Exception as exc:  # counted and printed; a bench should finish and report
                errors.append(repr(exc))

        cpu = time.process_time()
        threads = [threading.Thread(target=answer, args=(i,)) for i in indices]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return {"results": results, "errors": errors, "cpu_s": time.process_time() - cpu, "sent_ok": sent_ok}


def run(args: argparse.Namespace) -> dict[str, Any]:
    prefix = f"bench-llm-{uuid.uuid4().hex[:8]}:"
    rdb = redis.Redis.from_url(args.redis_url)
    stub_config = {"tokens": args.tokens, "first_token_delay": args.first_token_delay,
                   "inter_token_delay": args.inter_token_delay}
    with serve("sandbox.llm", "--config", json.dumps(stub_config)) as llm_url, \
            serve("sandbox", "--ping-interval", "0", "--log-level", "WARNING",
                  "--client-id", BENCH_APP[0], "--client-secret", BENCH_APP[1]) as card_url, \
            SandboxClient(card_url) as control, \
            ProcessPoolExecutor(args.procs, mp_context=multiprocessing.get_context("spawn")) as pool:
        control.configure(qps_limits={"card": args.qps})
        token = httpx.post(f"{card_url}/v1.0/oauth2/accessToken",
                           json={"appKey": BENCH_APP[0], "appSecret": BENCH_APP[1]}).json()["accessToken"]
        opts = {"redis_url": args.redis_url, "qps": args.qps, "flow_status": args.flow_status,
                "robot_code": BENCH_APP[0]}
        start_at = time.time() + 3.0  # every process imported and waiting
        batches = [list(range(args.answers))[p::args.procs] for p in range(args.procs)]
        futures = [pool.submit(answer_batch, b, llm_url, card_url, token, prefix, opts, start_at) for b in batches]
        outs = [f.result() for f in futures]
        cards = control.cards()
        throttled = control.state()["throttled"]
    for key in rdb.scan_iter(match=prefix + "*"):
        rdb.delete(key)
    results = [r for o in outs for r in o["results"]]
    total = max((r["elapsed_s"] for r in results), default=0.0)
    counts = [sum(1 for u in c["updates"] if u["kind"] == "streaming" and not u["duplicate"]) for c in cards] or [0]
    first = [r["first_visible_s"] for r in results if r["first_visible_s"] is not None]
    return {
        "answers": args.answers,
        "worker_processes": args.procs,
        "finished": sum(1 for r in results if r["ok"]),
        "errors": [e for o in outs for e in o["errors"]][:5],
        "tokens_per_answer": args.tokens,
        "llm_answer_seconds": round(args.first_token_delay + args.tokens * args.inter_token_delay, 2),
        "card_qps_limit": args.qps,
        "card_calls_accepted": sum(len(o["sent_ok"]) for o in outs),
        "card_calls_max_in_any_second": max_per_second([t for o in outs for t in o["sent_ok"]]),
        "flow_status_update": args.flow_status,
        "streaming_updates_per_answer": {"mean": round(statistics.mean(counts), 2), "max": max(counts),
                                         "min": min(counts)},
        "responses_403": throttled,
        "duplicate_guids": sum(1 for c in cards for u in c["updates"] if u.get("duplicate")),
        "first_visible_token_s": {"p50": percentile(first, 50), "p99": percentile(first, 99)},
        "total_s": round(total, 2),
        "workers_cpu_s": round(sum(o["cpu_s"] for o in outs), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=50)
    parser.add_argument("--procs", type=int, default=2, help="worker processes sharing the budget")
    parser.add_argument("--qps", type=float, default=20.0, help="card API limit (sandbox) and shared budget")
    parser.add_argument("--tokens", type=int, default=120)
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument("--inter-token-delay", type=float, default=0.05, help="20 tokens/s: a 7B model's pace")
    parser.add_argument("--flow-status", action="store_true", help="also PUT flowStatus 3/5 at the end of each card")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    print(json.dumps(run(parser.parse_args()), indent=2))


if __name__ == "__main__":
    main()
