"""Pipeline benchmark: ACK and first-reply latency, drain rate and CPU per message, vs a bare chain.

Runs the real processes (sandbox, listener, pipeline and skills workers) on a private vhost and
prints one JSON object. Phase 1 offers traffic at a steady rate (latency); phase 2 offers a burst
far above capacity (drain rate); phase 3 drains the same number of bare three-task chains on the
same broker and pools (the baseline).

    .venv/bin/python bench/pipeline.py [--broker amqp|redis] [--rate 100] [--messages 1000]

Fair comparison: the bare chain runs on the same broker (vhost), with the same worker layout as
the pipeline -- a threads pool of --pipeline-concurrency consuming the pipeline queues and a
prefork pool of --skills-concurrency consuming dtbot.skills --, the same Celery app settings
(make_app: acks_late, prefetch multiplier, task events, no result backend) and the same log
level. What differs is the work itself: four stages instead of three, plus the listener and the
sandbox that the pipeline's messages travel through (their CPU is on the same two cores).

The shared DingTalk rate budget (DINGTALK_QPS_WEBHOOK, 20/s by default, spent at 85 %) caps
delivered replies at ~17/s by design; the bare chain has no such cap. So by default the run
lifts the budget (--webhook-qps 0) to measure what the pipeline itself can drain; pass
--webhook-qps 20 to see the deployed cap instead. The JSON says which was used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis

from sandbox.client import SandboxClient
from testkit import services, traffic
from testkit.ledger import Ledger
from testkit.stack import PIPELINE_QUEUES, SKILL_QUEUES, Proc, Stack

BENCH_DB = "dtbot_bench"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(value: float) -> float:
    return round(value * 1000, 2)


def prepare_database(name: str = BENCH_DB) -> str:
    """A migrated database of its own, so the benchmark never touches the developer's data."""
    url = f"postgres://postgres@127.0.0.1:5432/{name}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True)
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


ROUTER_SETUP = r"""
import sys
from workers.resources import setup_django
setup_django()
from webapp.actions.routing import active_router_version, do_train_router
if sys.argv[1] == "embedding" and not active_router_version():
    do_train_router("bench/pipeline.py")  # the seeded intent examples
print(active_router_version() or "")
"""


def prepare_router(database_url: str, mode: str) -> str:
    """The router preprocess will use: none trained (keyword routing, the spine's) or a trained
    embedding router (trained once into this database). Returns the active version ('' = none)."""
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", ROUTER_SETUP, mode], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()
    version = out[-1] if out else ""
    if mode == "keyword" and version:
        raise SystemExit(f"database has an active router {version}; use another --database for keyword routing")
    return version


def prefetch_multiplier() -> int:
    from workers.celery import make_app

    return int(make_app().conf.worker_prefetch_multiplier)


def cpu(procs: list[Proc]) -> float:
    return sum(p.cpu_seconds() for p in procs)


def run_phase(client: SandboxClient, n: int, rate: float, timeout: float, start: int) -> dict[str, Any]:
    """Offer n messages at `rate`; return latencies measured by the sandbox and the drain rate."""
    ledger = Ledger()
    since = max((r["id"] for r in client.replies()), default=0)
    began = time.time()
    traffic.send(client, ledger, n, conversations=200, start=start, rate=rate, batch=min(50, max(1, int(rate / 20))))
    replies = [r for r in traffic.wait_for_all(client, ledger, timeout=timeout, settle=0.5) if r["id"] > since]
    verdict = ledger.check(replies)
    pushes = {p["msgId"]: p for p in client.pushes() if p["msgId"] in ledger.sent}
    ack_lat = [p["ackedAt"] - p["pushedAt"][0] for p in pushes.values() if p["acked"] and p["pushedAt"]]
    first_reply: dict[str, float] = {}
    for reply in replies:
        msg_id = ledger.attribute(reply)
        if msg_id is not None and msg_id in pushes and msg_id not in first_reply:
            first_reply[msg_id] = reply["at"] - pushes[msg_id]["injectedAt"]
    last = max((r["at"] for r in replies), default=time.time())
    return {
        "offered": n,
        "offered_rate": rate,
        "replied": verdict.sent - len(verdict.lost),
        "lost": len(verdict.lost),
        "duplicates": len(verdict.duplicates),
        "ack_ms_p50": ms(percentile(ack_lat, 50)),
        "ack_ms_p99": ms(percentile(ack_lat, 99)),
        "first_reply_ms_p50": ms(percentile(list(first_reply.values()), 50)),
        "first_reply_ms_p99": ms(percentile(list(first_reply.values()), 99)),
        "drained_per_s": round(len(first_reply) / max(1e-6, last - began), 1),
    }


def bare_chain(stack: Stack, n: int, pipeline_c: int, skills_c: int, log_level: str,
               replicas: int = 1) -> dict[str, Any]:
    """Drain n bare chains with the same pools; return chains per second and CPU per chain."""
    env = {"PYTHONPATH": str(ROOT), "LOG_LEVEL": log_level}
    procs = [
        *(stack.start_worker("bare-pipeline", PIPELINE_QUEUES, pool="threads",
                             concurrency=pipeline_c, app="bench.bare_chain", **env) for _ in range(replicas)),
        stack.start_worker("bare-skills", SKILL_QUEUES, pool="prefork", concurrency=skills_c,
                           app="bench.bare_chain", **env),
    ]
    os.environ.update(CELERY_BROKER_URL=stack.broker_url, REDIS_KEY_PREFIX=stack.redis_prefix)
    from bench import bare_chain as bare

    bare.app.conf.broker_url = stack.broker_url
    client = redis.Redis.from_url(stack.redis_url)
    client.delete(bare.DONE_KEY)
    cpu0 = cpu(procs)
    began = time.time()
    with bare.app.producer_or_acquire() as producer:
        for i in range(n):
            bare.chain_for({"i": i, "text": "hello"}).apply_async(producer=producer)
    deadline = time.time() + 600
    while int(client.get(bare.DONE_KEY) or 0) < n and time.time() < deadline:
        time.sleep(0.05)
    took = time.time() - began
    done = int(client.get(bare.DONE_KEY) or 0)
    cpu_ms = round((cpu(procs) - cpu0) * 1000 / max(1, done), 2)
    result = {"chains": done, "per_s": round(done / took, 1), "cpu_ms_per_chain": cpu_ms}
    for proc in procs:
        stack.kill(proc)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=["amqp", "redis"], default="amqp")
    parser.add_argument("--rate", type=float, default=100.0, help="steady offered rate for the latency phase")
    parser.add_argument("--messages", type=int, default=1000, help="messages in the latency phase")
    parser.add_argument("--burst", type=int, default=2000, help="messages in the drain phase (and bare chains)")
    parser.add_argument("--burst-rate", type=float, default=2000.0)
    parser.add_argument("--pipeline-concurrency", type=int, default=8)
    parser.add_argument("--skills-concurrency", type=int, default=2)
    parser.add_argument("--pipeline-replicas", type=int, default=1,
                        help="worker-pipeline processes (each threads x --pipeline-concurrency), bare chain too")
    parser.add_argument("--webhook-qps", type=float, default=0.0,
                        help="DINGTALK_QPS_* of the workers (0: budget lifted, to measure the pipeline itself)")
    parser.add_argument("--log-level", default="WARNING", help="of every worker and the listener")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE", BENCH_DB),
                        help="PostgreSQL database of the run (created and migrated; one per concurrent bench);"
                             " '_embedding' is appended with --router embedding")
    parser.add_argument("--router", choices=["keyword", "embedding"], default="keyword",
                        help="keyword: no trained router, the spine's help/echo routing; embedding: a trained router")
    args = parser.parse_args()

    database = args.database + ("_embedding" if args.router == "embedding" else "")
    database_url = prepare_database(database)
    router_version = prepare_router(database_url, args.router)
    broker_ctx = services.rabbit_vhost("dtbot-bench") if args.broker == "amqp" else services.redis_broker_db()
    with broker_ctx as broker_url, services.redis_namespace() as prefix, tempfile.TemporaryDirectory() as logs:
        stack = Stack(broker_url=broker_url, database_url=database_url, redis_prefix=prefix, log_dir=Path(logs))
        try:
            sandbox = stack.start_sandbox(redeliver_after=60, ping_interval=20)
            qps = str(args.webhook_qps)
            budget = {"DINGTALK_QPS_WEBHOOK": qps, "DINGTALK_QPS_ROBOT_SEND": qps, "DINGTALK_QPS_CARD": qps}
            pipeline_workers = [
                stack.start_pipeline_worker(concurrency=args.pipeline_concurrency, LOG_LEVEL=args.log_level,
                                            **budget)
                for _ in range(args.pipeline_replicas)
            ]
            skills_worker = stack.start_skills_worker(concurrency=args.skills_concurrency,
                                                      LOG_LEVEL=args.log_level, **budget)
            workers = [*pipeline_workers, skills_worker]
            listener = stack.start_listener(LOG_LEVEL=args.log_level)
            client = SandboxClient(stack.sandbox_url)
            client.wait_for_state(connections=1, timeout=30)
            procs = [listener, *workers]

            roles = {"listener": [listener], "worker_pipeline": pipeline_workers, "worker_skills": [skills_worker],
                     "sandbox": [sandbox]}
            cpu0 = {name: cpu(group) for name, group in roles.items()}
            latency = run_phase(client, args.messages, args.rate, timeout=300, start=0)
            cpu1 = {name: cpu(group) for name, group in roles.items()}
            drain = run_phase(client, args.burst, args.burst_rate, timeout=600, start=args.messages)
            cpu2 = {name: cpu(group) for name, group in roles.items()}
            for phase, before, after in ((latency, cpu0, cpu1), (drain, cpu1, cpu2)):
                per = {name: round((after[name] - before[name]) * 1000 / max(1, phase["replied"]), 2)
                       for name in roles}
                # The bot's own CPU (listener + workers); the sandbox plays DingTalk and is shown apart.
                phase["cpu_ms_per_message"] = round(sum(v for k, v in per.items() if k != "sandbox"), 2)
                phase["cpu_ms_per_message_by_role"] = per
            for proc in procs:
                stack.kill(proc)
            baseline = bare_chain(stack, args.burst, args.pipeline_concurrency, args.skills_concurrency,
                                  args.log_level, args.pipeline_replicas)
        finally:
            stack.stop()
    print(json.dumps({
        "broker": args.broker,
        "cores": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "webhook_qps_budget": args.webhook_qps or "lifted",
        "router": {"mode": args.router, "version": router_version},
        "pools": {"pipeline": f"{args.pipeline_replicas} x threads x{args.pipeline_concurrency}",
                  "skills": f"prefork x{args.skills_concurrency}",
                  "prefetch_multiplier": prefetch_multiplier(), "log_level": args.log_level},
        "latency_phase": latency,
        "drain_phase": drain,
        "bare_chain": baseline,
        "drain_ratio_vs_bare_chain": round(drain["drained_per_s"] / max(1e-6, baseline["per_s"]), 2),
    }, indent=2))


if __name__ == "__main__":
    main()
