"""ACK latency benchmark: the DingTalk sandbox + `python -m ingest`, no workers; prints JSON.

    .venv/bin/python bench/ack.py [--broker rabbitmq|redis] [--rate 2000] [--seconds 4] [--listeners 1]
                                  [--queue-version 2] [--broker-down]

The sandbox pushes `rate` robot messages per second for `seconds`; the listener makes each durable
(confirmed publish, or LPUSH on Redis) and ACKs it. Reported: offered, acked, ACK latency as measured
by the listener (frame read → ACK written: p50/p99 from its Prometheus histogram over the offered
window; exact p50/p99/max of its shutdown log line, which also counts the 50 warm-up ACKs) and as
seen by the sandbox (push queued → ACK received), plus CPU per message of listener and sandbox.
--broker-down cuts the broker off after the warm-up: every push then goes to the listener's
journal (fsync'd, then ACKed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sandbox.client import SandboxClient
from testkit import services
from testkit.tcpproxy import tcp_proxy

CLIENT_ID, CLIENT_SECRET = "sandbox-client-id", "sandbox-client-secret"
CONFIRM = "ingest_confirm_latency_seconds"
STATS_LINE = re.compile(r"ack latency p50=([\d.]+)ms p99=([\d.]+)ms max=([\d.]+)ms over (\d+) acks")


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(extra)
    return env


@contextlib.contextmanager
def broker(kind: str, queue_version: int | None = None) -> Iterator[str]:
    """A private RabbitMQ vhost or Redis broker database, removed afterwards.

    `queue_version` 2 applies a policy making the vhost's classic queues CQv2 (an operator's
    choice, no code change: the queues are declared the same way).
    """
    if kind == "redis":
        with services.redis_broker_db() as url:
            yield url
    else:
        with services.rabbit_vhost("dtbot-bench") as url:
            if queue_version:
                vhost = url.rsplit("/", 1)[1]
                subprocess.run(
                    ["rabbitmqctl", "-q", "set_policy", "-p", vhost, "queue-version", ".*",
                     json.dumps({"queue-version": queue_version}), "--apply-to", "queues"],
                    check=True, capture_output=True, timeout=60,
                )
            yield url


def _wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1.0)
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


@contextlib.contextmanager
def sandbox(mode: str) -> Iterator[tuple[str, int]]:
    """The sandbox in its own process (default: it does not share the listener's cores' GIL) or thread."""
    if mode == "thread":
        from sandbox.dingtalk.server import SandboxServer

        with SandboxServer(redeliver_after=60.0, ping_interval=20.0) as server:
            yield server.base_url, os.getpid()
        return
    port = services.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--log-level", "WARNING",
         "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET],
        cwd=ROOT, env=_clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/sandbox/state")
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def listener(gateway: str, broker_url: str, metrics_port: int, log_path: Path) -> Iterator[subprocess.Popen]:
    """One `python -m ingest` process against the sandbox."""
    env = _clean_env(
        DINGTALK_CLIENT_ID=CLIENT_ID, DINGTALK_CLIENT_SECRET=CLIENT_SECRET, DINGTALK_OPENAPI_ENDPOINT=gateway,
        CELERY_BROKER_URL=broker_url, REDIS_KEY_PREFIX=services.unique_name("bench") + ":",
        INGEST_METRICS_PORT=str(metrics_port), LOG_LEVEL="INFO",
        # Each listener its own journal (a second one on the same journal would refuse to start).
        INGEST_JOURNAL_DIR=str(log_path.with_suffix(".journal")),
    )
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def scrape_histogram(port: int, name: str = "ingest_ack_latency_seconds") -> tuple[list[tuple[float, float]], float]:
    """Cumulative (upper bound, count) buckets of histogram `name`, and the count."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets.append((float(sample.labels["le"]), sample.value))
    buckets.sort()
    return buckets, (buckets[-1][1] if buckets else 0.0)


def histogram_quantile(q: float, before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float | None:
    """Prometheus-style linear interpolation inside the bucket holding the q-th observation (ms)."""
    prior = dict(before)
    diff = [(le, count - prior.get(le, 0.0)) for le, count in after]
    total = diff[-1][1] if diff else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in diff:
        if count >= rank:
            if le == float("inf"):
                return lower_le * 1000
            span = count - lower_count
            fraction = (rank - lower_count) / span if span else 1.0
            return (lower_le + (le - lower_le) * fraction) * 1000
        lower_le, lower_count = le, count
    return None


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def offer(client: SandboxClient, rate: float, seconds: float, tick: float = 0.01) -> tuple[list[str], float]:
    """Inject messages at `rate` per second (one batch per tick); returns msgIds and elapsed time."""
    total = int(rate * seconds)
    sent: list[str] = []
    started = time.monotonic()
    while len(sent) < total:
        due = min(total, int(rate * (time.monotonic() - started))) - len(sent)
        if due > 0:
            batch = [{"text": f"bench {len(sent) + i}", "user_id": f"user{(len(sent) + i) % 50}"} for i in range(due)]
            sent.extend(m["msgId"] for m in client.send_batch(batch))
        time.sleep(tick)
    return sent, time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _sum_buckets(histograms: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    total: dict[float, float] = {}
    for buckets in histograms:
        for le, count in buckets:
            total[le] = total.get(le, 0.0) + count
    return sorted(total.items())


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    ports = [services.free_port() for _ in range(args.listeners)]
    logs = [workdir / f"ingest-{i}.log" for i in range(args.listeners)]
    with broker(args.broker, args.queue_version) as broker_url, sandbox(args.sandbox) as (base, sandbox_pid), \
            SandboxClient(base, timeout=30) as client, contextlib.ExitStack() as stack:
        proxy = None
        if args.broker_down:  # the listeners reach the broker through a proxy that is cut after warm-up
            proxy = stack.enter_context(tcp_proxy(target_port=6379 if args.broker == "redis" else 5672))
        listen_url = proxy.url_for(broker_url) if proxy is not None else broker_url
        procs = [
            stack.enter_context(listener(base, listen_url, port, log)) for port, log in zip(ports, logs, strict=True)
        ]
        deadline = time.monotonic() + 30
        while len(client.connections()) < len(procs) or not all(_metrics_up(p) for p in ports):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"listeners did not connect; see {workdir}")
            time.sleep(0.1)
        # Warm-up: first connections, declarations and code paths are not what is measured.
        client.send_batch([{"text": "warm-up", "user_id": "w"} for _ in range(50)])
        client.wait_for_state(acked=50, timeout=30)
        if proxy is not None:
            proxy.cut()  # from here on every push goes to the listener's journal, then is ACKed
        time.sleep(0.5)
        before = _sum_buckets([scrape_histogram(p)[0] for p in ports])
        confirm_before = _sum_buckets([scrape_histogram(p, CONFIRM)[0] for p in ports])
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        sandbox_cpu_before = cpu_seconds(sandbox_pid)
        load_before = os.getloadavg()[0]
        msg_ids, offer_seconds = offer(client, args.rate, args.seconds)
        with contextlib.suppress(TimeoutError):
            client.wait_for_state(acked=50 + len(msg_ids), timeout=args.drain_timeout)
        after = _sum_buckets([scrape_histogram(p)[0] for p in ports])
        confirm_after = _sum_buckets([scrape_histogram(p, CONFIRM)[0] for p in ports])
        cpu_used = sum(cpu_seconds(p.pid) for p in procs) - cpu_before
        sandbox_cpu_used = cpu_seconds(sandbox_pid) - sandbox_cpu_before
        for proc in procs:  # the shutdown line reports the window since the last periodic one
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(15)
        wanted = set(msg_ids)
        pushes = [p for p in client.pushes() if p["msgId"] in wanted]
    seen = [(p["ackedAt"] - p["pushedAt"][0]) * 1000 for p in pushes if p["acked"] and p["pushedAt"]]
    per_listener = []
    for log in logs:
        stats = STATS_LINE.findall(log.read_text())
        if stats:
            p50, p99, mx, count = stats[-1]
            per_listener.append({"p50": float(p50), "p99": float(p99), "max": float(mx), "count": int(count)})
    return {
        "broker": args.broker + (" (down: every push journaled)" if args.broker_down else ""),
        "queue_version": args.queue_version,
        "listeners": args.listeners,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "offered": len(msg_ids),
        "offer_seconds": round(offer_seconds, 2),
        "acked": len(seen),
        "redelivered_pushes": sum(1 for p in pushes if len(p["pushedAt"]) > 1),
        "listener_ack_ms": {
            "p50": _round(histogram_quantile(0.50, before, after)),
            "p99": _round(histogram_quantile(0.99, before, after)),
            "source": "ingest_ack_latency_seconds histogram over the offered window (frame read -> ACK written)",
        },
        "broker_confirm_ms": {
            "p50": _round(histogram_quantile(0.50, confirm_before, confirm_after)),
            "p99": _round(histogram_quantile(0.99, confirm_before, confirm_after)),
            "batches": int(confirm_after[-1][1] - dict(confirm_before).get(float("inf"), 0.0)) if confirm_after else 0,
            "source": f"{CONFIRM} per batch (write started -> confirmed or LPUSHed)",
        },
        "listener_log_ack_ms": per_listener,
        "sandbox_push_to_ack_ms": {
            "p50": _round(percentile(seen, 0.50)) if seen else None,
            "p99": _round(percentile(seen, 0.99)) if seen else None,
            "max": _round(max(seen)) if seen else None,
        },
        "listener_cpu_ms_per_msg": _round(cpu_used * 1000 / max(1, len(msg_ids))),
        "sandbox_cpu_ms_per_msg": _round(sandbox_cpu_used * 1000 / max(1, len(msg_ids))),
        "load_average_1m": round(load_before, 2),
        "cpus": os.cpu_count(),
        "logs": str(workdir),
    }


def _metrics_up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", choices=("rabbitmq", "redis"), default="rabbitmq")
    parser.add_argument("--queue-version", type=int, choices=(1, 2), default=None,
                        help="RabbitMQ: a policy setting the classic queue version (default: the broker's)")
    parser.add_argument("--rate", type=float, default=2000.0, help="messages offered per second")
    parser.add_argument("--seconds", type=float, default=4.0, help="how long to offer")
    parser.add_argument("--sandbox", choices=("process", "thread"), default="process")
    parser.add_argument("--broker-down", action="store_true",
                        help="cut the broker off after warm-up: measures the journal path (fsync, then ACK)")
    parser.add_argument("--drain-timeout", type=float, default=60.0,
                        help="seconds to wait for every ACK (pushes dropped un-ACKed come back after 60 s)")
    parser.add_argument("--listeners", type=int, default=1,
                        help="listener processes (DingTalk pushes each message to one random connection)")
    result = run(parser.parse_args(argv))
    print(json.dumps(result, indent=2))
    return 0 if result["acked"] == result["offered"] else 1


if __name__ == "__main__":
    sys.exit(main())
