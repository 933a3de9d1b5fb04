"""Pipeline benchmark: ACK and first-reply latency, drain rate and CPU per message, vs a bare chain.

Runs the real processes (sandbox, listener, pipeline and skills workers) on a private vhost and
prints one JSON object. Phase 1 offers traffic at a steady rate (latency); phase 2 offers a burst
far above capacity (drain rate); phase 3 drains the same number of bare three-task chains on the
same broker and pools (the baseline).

    .venv/bin/python bench/pipeline.py [--broker amqp|redis] [--rate 100] [--messages 1000]
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

import redis  # noqa: E402

from sandbox.client import SandboxClient  # noqa: E402
from testkit import services, traffic  # noqa: E402
from testkit.ledger import Ledger  # noqa: E402
from testkit.stack import Proc, Stack  # noqa: E402

BENCH_DB = "dtbot_bench"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ms(value: float) -> float:
    return round(value * 1000, 2)


def prepare_database() -> str:
    """A migrated database of its own, so the benchmark never touches the developer's data."""
    url = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", BENCH_DB], capture_output=True)
    env = dict(os.environ, DATABASE_URL=url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


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
        if msg_id in pushes and msg_id not in first_reply:
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


def bare_chain(stack: Stack, n: int, pipeline_c: int, skills_c: int) -> dict[str, Any]:
    """Drain n bare chains with the same pools; return chains per second and CPU per chain."""
    env = {"PYTHONPATH": str(ROOT)}
    procs = [
        stack.start_worker("bare-pipeline", "dtbot.preprocess,dtbot.deliver", pool="threads",
                           concurrency=pipeline_c, app="bench.bare_chain", **env),
        stack.start_worker("bare-skills", "dtbot.skills", pool="prefork", concurrency=skills_c,
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
    result = {"chains": done, "per_s": round(done / took, 1), "cpu_ms_per_chain": round((cpu(procs) - cpu0) * 1000 / max(1, done), 2)}
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
    args = parser.parse_args()

    database_url = prepare_database()
    broker_ctx = services.rabbit_vhost("dtbot-bench") if args.broker == "amqp" else services.redis_broker_db()
    with broker_ctx as broker_url, services.redis_namespace() as prefix, tempfile.TemporaryDirectory() as logs:
        stack = Stack(broker_url=broker_url, database_url=database_url, redis_prefix=prefix, log_dir=Path(logs))
        try:
            stack.start_sandbox(redeliver_after=60, ping_interval=20)
            workers = [
                stack.start_pipeline_worker(concurrency=args.pipeline_concurrency, LOG_LEVEL="WARNING"),
                stack.start_skills_worker(concurrency=args.skills_concurrency, LOG_LEVEL="WARNING"),
            ]
            listener = stack.start_listener(LOG_LEVEL="WARNING")
            client = SandboxClient(stack.sandbox_url)
            client.wait_for_state(connections=1, timeout=30)
            procs = [listener, *workers]

            cpu0 = cpu(procs)
            latency = run_phase(client, args.messages, args.rate, timeout=300, start=0)
            cpu1 = cpu(procs)
            drain = run_phase(client, args.burst, args.burst_rate, timeout=600, start=args.messages)
            cpu2 = cpu(procs)
            latency["cpu_ms_per_message"] = round((cpu1 - cpu0) * 1000 / max(1, latency["replied"]), 2)
            drain["cpu_ms_per_message"] = round((cpu2 - cpu1) * 1000 / max(1, drain["replied"]), 2)
            for proc in procs:
                stack.kill(proc)
            baseline = bare_chain(stack, args.burst, args.pipeline_concurrency, args.skills_concurrency)
        finally:
            stack.stop()
    print(json.dumps({
        "broker": args.broker,
        "cores": os.cpu_count(),
        "latency_phase": latency,
        "drain_phase": drain,
        "bare_chain": baseline,
        "drain_ratio_vs_bare_chain": round(drain["drained_per_s"] / max(1e-6, baseline["per_s"]), 2),
    }, indent=2))


if __name__ == "__main__":
    main()
