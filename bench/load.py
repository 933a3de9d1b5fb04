"""Load benchmark (the headline figure): open-loop steps of offered rate through the roles `make run` starts.

Sandbox, listener, worker-pipeline (threads x 8), worker-skills (prefork x 2, CPU skills) and
worker-skills-io (threads x 64, LLM and other waiting skills), the embedding router trained as on
first start, and the stub LLM in its own process at its default latency (0.3 s to the first token,
0.03 s a token). Messages are realistic Chinese and English employee phrasings (the skills' own
examples, CLINC150 / SMP2017 questions from ../shared/data/intents/) from many users and groups.

Prints one JSON object: per step offered, answered, duplicates, first-visible-reply p50/p99/max,
drain rate, CPU ms per message per role, LLM concurrency in use, errors; the LLM's own answer time
measured alone in the same run (an SDK client straight at the stub, no queue, at the step's rate);
the highest step whose first-reply p99 is within 0.5 s of it; and with --burst N a burst of N
messages in 10 s: time to drain, peak queue depth, lost, duplicates, conversations answered out of
order.

    .venv/bin/python bench/load.py [--steps 10,20,30,40,50] [--step-seconds 10] [--cards] [--burst 5000]
    .venv/bin/python bench/load.py --quick      # smoke test: one small step, a small burst
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
import openai
from kombu import Connection

from bench.llm_pipeline import card_times
from bench.llm_stream import percentile, serve
from bench.pipeline import prepare_database, prepare_router
from contract.pipeline import QUEUE_NAMES
from sandbox.client import SandboxClient
from skills import registry
from testkit import services
from testkit.stack import Proc, Stack
from workers.dingtalk.card_streamer import out_track_id_for

INTENTS = ROOT.parent / "shared" / "data" / "intents"
NOTICE_PREFIXES = ("排队中", "Busy right now")
CARD_TEMPLATE = "bench-ai-card"


# --- the traffic -------------------------------------------------------------------------------

def phrasings(seed: int = 7) -> list[str]:
    """Employee messages: the skills' examples (help, chat, reminders; docsearch's need documents,
    left out) and questions from the public intent sets, Chinese and English mixed."""
    texts: list[str] = []
    for name in ("help", "llm_chat", "schedule", "echo"):
        for examples in registry.skill_class(name).examples.values():
            texts.extend(examples)
    rng = random.Random(seed)
    for file, n in (("clinc150_train.json", 400), ("smp2017_train.json", 400)):
        path = INTENTS / file
        if path.exists():
            rows = json.loads(path.read_text(encoding="utf-8"))
            texts.extend(r["text"] for r in rng.sample(rows, min(n, len(rows))))
    return texts


class Traffic:
    """Messages from `users` people, a third of them in one of `groups` group chats."""

    def __init__(self, texts: list[str], users: int = 300, groups: int = 30, seed: int = 11) -> None:
        self.texts, self.users, self.groups = texts, users, groups
        self.rng = random.Random(seed)
        self.i = 0

    def next(self) -> dict[str, Any]:
        self.i += 1
        user = self.rng.randrange(self.users)
        body: dict[str, Any] = {"text": self.rng.choice(self.texts), "user_id": f"staff{user}",
                                "nick": f"User {user}"}
        if user % 3 == 0:
            body.update(conversation_type="2", conversation_id=f"cidgroup{user % self.groups}==")
        return body


def offer(client: SandboxClient, traffic: Traffic, rate: float, seconds: float) -> list[dict[str, Any]]:
    """Open loop: `rate` messages a second for `seconds`, in batches every 0.1 s, whatever the bot does."""
    sent: list[dict[str, Any]] = []
    began = time.monotonic()
    total = int(rate * seconds)
    while len(sent) < total:
        due = min(total, int((time.monotonic() - began) * rate) + 1)
        if due > len(sent):
            sent += client.send_batch([traffic.next() for _ in range(due - len(sent))])
        time.sleep(0.1)
    return sent


# --- what the sandbox saw ------------------------------------------------------------------------

def outcome(client: SandboxClient, sent: list[dict[str, Any]], cards: bool, timeout: float) -> dict[str, Any]:
    """Wait until every message has its answer (or timeout); first visible reply per message."""
    wanted = {m["msgId"] for m in sent}
    by_track = {out_track_id_for(m): m for m in wanted}
    deadline = time.time() + timeout

    def attributed() -> list[dict[str, Any]]:
        """Every reply with its msgId (an AI card's reply carries its outTrackId instead)."""
        out = []
        for r in client.replies():
            msg_id = r.get("msg_id") or by_track.get(str(r.get("out_track_id") or ""))
            if msg_id in wanted:
                out.append({**r, "msg_id": msg_id})
        return out

    def answers() -> list[dict[str, Any]]:
        return [r for r in attributed() if not str(r["text"]).startswith(NOTICE_PREFIXES)]

    replies = answers()
    while time.time() < deadline and len({r["msg_id"] for r in replies}) < len(wanted):
        time.sleep(0.5)
        replies = answers()
    time.sleep(1.0)  # late duplicates show up now
    replies = answers()
    every = attributed()
    injected = {p["msgId"]: p["injectedAt"] for p in client.pushes() if p["msgId"] in wanted}
    first: dict[str, float] = {}
    for reply in sorted(replies, key=lambda r: r["at"]):
        first.setdefault(reply["msg_id"], reply["at"])
    if cards:  # a card counts when its first text shows
        for card in client.cards():
            msg_id = by_track.get(card["outTrackId"])
            if msg_id is None:
                continue
            shown, _ = card_times(client.card(card["outTrackId"]), first.get(msg_id, time.time()))
            if shown is not None:
                first[msg_id] = shown  # the card exists earlier, empty ("thinking…")
    counts = Counter(r["msg_id"] for r in replies)
    latencies = [first[m] - injected[m] for m in first if m in injected]
    # Group chats are answered one message at a time (per-conversation order): shown apart.
    in_groups = {m["msgId"] for m in sent if str(m["conversationId"]).startswith("cidgroup")}
    private = [first[m] - injected[m] for m in first if m in injected and m not in in_groups]
    errors = sum(1 for r in replies if "抱歉" in str(r["text"])[:4] or str(r["text"]).startswith("Sorry"))
    notices = Counter(r["msg_id"] for r in every if str(r["text"]).startswith(NOTICE_PREFIXES))
    start = min(injected.values(), default=time.time())
    last = max(first.values(), default=start)
    return {
        "answered": len(counts), "lost": len(wanted) - len(counts),
        "duplicates": sum(1 for c in counts.values() if c > 1),
        "first_visible_s": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
                            "max": round(max(latencies), 3) if latencies else None},
        "first_visible_private_chats_s": {"p50": percentile(private, 50), "p99": percentile(private, 99)},
        "drain_per_s": round(len(first) / max(1e-6, last - start), 1),
        "errors": errors, "busy_notices": sum(notices.values()),
        "notices_twice": sum(1 for c in notices.values() if c > 1),
        "_first": first, "_injected": injected,
    }


def out_of_order(sent: list[dict[str, Any]], first: dict[str, float], injected: dict[str, float]) -> int:
    """Conversations where a message was answered before one sent earlier. Messages injected within
    5 ms of each other are a tie (DingTalk's createAt has ms resolution; the bot orders a tie by msgId)."""
    by_conv: dict[str, list[str]] = defaultdict(list)
    for m in sent:
        if m["msgId"] in first and m["msgId"] in injected:
            by_conv[m["conversationId"]].append(m["msgId"])
    bad = 0
    for ids in by_conv.values():
        ids.sort(key=lambda i: injected[i])
        bad += any(injected[b] - injected[a] > 0.005 and first[b] < first[a]
                   for a, b in itertools.combinations(ids, 2))
    return bad


# --- roles, CPU, queues, the LLM -------------------------------------------------------------

def cpu_by_role(procs: list[Proc]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for p in procs:
        out[p.role] += p.cpu_seconds()
    return dict(out)


class Sampler:
    """Samples the stub's completions in flight and the broker's queue depths every 0.25 s."""

    def __init__(self, llm_url: str, broker_url: str) -> None:
        self.llm_url, self.broker_url = llm_url, broker_url
        self.in_flight: list[int] = []
        self.depth: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        with Connection(self.broker_url) as conn, httpx.Client(timeout=2) as http:
            channel = conn.channel()
            while not self._stop.wait(0.25):
                try:
                    self.in_flight.append(int(http.get(self.llm_url + "/stub/config").json()["in_flight"]))
                    self.depth.append(sum(channel.queue_declare(q, passive=True).message_count for q in QUEUE_NAMES))
                except Exception:  # a missed sample; the next one counts
                    continue

    def summary(self) -> dict[str, Any]:
        flight = self.in_flight or [0]
        return {"llm_in_flight_max": max(flight), "llm_in_flight_mean": round(sum(flight) / len(flight), 1),
                "peak_queue_depth": max(self.depth or [0])}


def llm_alone(llm_url: str, texts: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """The stub's own answer times: an official-SDK client per request, open loop at `rate`, no queue."""
    client = openai.OpenAI(base_url=llm_url + "/v1", api_key="not-needed", max_retries=0)
    totals: list[float] = []
    firsts: list[float] = []
    lock = threading.Lock()

    def ask(text: str) -> None:
        began = time.monotonic()
        first = None
        stream = client.chat.completions.create(model="stub-llm", stream=True,
                                                messages=[{"role": "user", "content": text}])
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic() - began
        with lock:
            totals.append(time.monotonic() - began)
            firsts.append(first or 0.0)

    rng = random.Random(3)
    threads = []
    began = time.monotonic()
    for i in range(int(rate * seconds)):
        pause = began + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        t = threading.Thread(target=ask, args=(rng.choice(texts),), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(60)
    return {"answer_s_p50": percentile(totals, 50), "answer_s_p99": percentile(totals, 99),
            "first_token_s_p99": percentile(firsts, 99), "n": len(totals)}


# --- the run ---------------------------------------------------------------------------------

def start_roles(stack: Stack, env: dict[str, str]) -> list[Proc]:
    stack.start_sandbox(redeliver_after=120)
    procs = [p for p in stack.procs if p.role == "sandbox"]
    procs += stack.start_procfile_workers(**env)
    procs.append(stack.start_listener(**env))
    return procs


def measure(step: Callable[[], dict[str, Any]], procs: list[Proc], n: Callable[[], int]) -> dict[str, Any]:
    before = cpu_by_role(procs)
    result = step()
    after = cpu_by_role(procs)
    count = max(1, n())
    per_role = {role: round((after[role] - before.get(role, 0.0)) * 1000 / count, 2) for role in after}
    result["cpu_ms_per_message"] = {**per_role, "total": round(sum(per_role.values()), 2)}
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    database_url = prepare_database(args.database)
    router_version = prepare_router(database_url, args.router)
    texts = phrasings()
    traffic = Traffic(texts, users=args.users)
    env = {"LOG_LEVEL": "WARNING", "LLM_MODEL": "stub-llm", "LLM_MAX_CONCURRENCY": str(args.llm_max_concurrency)}
    if args.cards:
        env["DINGTALK_AI_CARD_TEMPLATE_ID"] = CARD_TEMPLATE
    report: dict[str, Any] = {"mode": "ai_card" if args.cards else "markdown", "router": args.router,
                              "router_version": router_version, "phrasings": len(texts),
                              "llm_max_concurrency": args.llm_max_concurrency, "cores": os.cpu_count(),
                              "load_average_at_start": os.getloadavg()[0], "steps": []}
    with serve("sandbox.llm", *args.llm_args) as llm_url, services.rabbit_vhost("dtbot-bench-load") as broker_url, \
            services.redis_namespace() as prefix, tempfile.TemporaryDirectory() as logs:
        env["LLM_BASE_URL"] = llm_url + "/v1"
        stack = Stack(broker_url=broker_url, database_url=database_url, redis_prefix=prefix, log_dir=Path(logs),
                      extra_env={"DINGTALK_QPS_CARD": "500"})
        try:
            procs = start_roles(stack, env)
            client = SandboxClient(stack.sandbox_url)
            client.wait_for_state(connections=1, timeout=60)
            # Warm every process (imports, first connections, the router's first call).
            outcome(client, offer(client, traffic, 5, 2), args.cards, timeout=60)
            for rate in args.steps:
                alone = llm_alone(llm_url, texts, rate, min(args.step_seconds, 5))
                sent: list[dict[str, Any]] = []

                def step(rate: float = rate, sent: list[dict[str, Any]] = sent) -> dict[str, Any]:
                    with Sampler(llm_url, broker_url) as sampler:
                        sent += offer(client, traffic, rate, args.step_seconds)
                        seen = outcome(client, sent, args.cards, timeout=args.step_timeout)
                    return {"offered_rate": rate, "offered": len(sent), **seen, **sampler.summary()}

                result = measure(step, procs, sent.__len__)
                result["out_of_order_conversations"] = out_of_order(sent, result.pop("_first"), result.pop("_injected"))
                result["llm_alone"] = alone
                report["steps"].append(result)
                print(json.dumps({"step": rate, **result}), file=sys.stderr, flush=True)
            if args.burst:
                sent = []  # the burst's own messages

                def burst() -> dict[str, Any]:
                    with Sampler(llm_url, broker_url) as sampler:
                        began = time.time()
                        sent.extend(offer(client, traffic, args.burst / 10, 10))
                        seen = outcome(client, sent, args.cards, timeout=args.burst_timeout)
                    drained = max(seen["_first"].values(), default=began) - began
                    return {"offered": len(sent), "seconds_to_drain": round(drained, 1), **seen, **sampler.summary()}

                result = measure(burst, procs, sent.__len__)
                result["out_of_order_conversations"] = out_of_order(sent, result.pop("_first"), result.pop("_injected"))
                report["burst"] = result
        finally:
            stack.stop()
    report["highest_step_within_0_5_s_of_the_llm"] = best_step(report["steps"], args.cards)
    report["load_average_at_end"] = os.getloadavg()[0]
    return report


def best_step(steps: list[dict[str, Any]], cards: bool) -> float | None:
    """Markdown: first-reply p99 within 0.5 s of the LLM's own answer p99 (alone); cards: first visible
    token p99 within 0.5 s of the LLM's own first-token p99. Nothing lost along the way."""
    best = None
    for s in steps:
        own = s["llm_alone"]["first_token_s_p99" if cards else "answer_s_p99"]
        p99 = s["first_visible_s"]["p99"]
        if own is not None and p99 is not None and p99 <= own + 0.5 and s["lost"] == 0:
            best = s["offered_rate"]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="10,20,30,40,50", help="offered rates, msgs/s")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--step-timeout", type=float, default=180.0)
    parser.add_argument("--burst", type=int, default=0, help="messages offered in 10 s after the steps (5000)")
    parser.add_argument("--burst-timeout", type=float, default=900.0)
    parser.add_argument("--cards", action="store_true", help="AI cards (first visible token) instead of markdown")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--llm-max-concurrency", type=int, default=64)
    parser.add_argument("--llm-args", default="", help="extra arguments of python -m sandbox.llm, e.g. "
                                                       "'--first-token-delay 5' for a slow AI core")
    parser.add_argument("--router", choices=["keyword", "embedding"], default="embedding")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE", "dtbot_bench_load"))
    parser.add_argument("--quick", action="store_true", help="smoke test: one 5 msgs/s step of 4 s, a burst of 100")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.step_seconds, args.burst = "5", 4.0, args.burst or 100
    args.steps = [float(s) for s in str(args.steps).split(",") if s]
    args.llm_args = args.llm_args.split()
    print(json.dumps(run(args), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    main()
