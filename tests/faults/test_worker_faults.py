"""The workers lose and double nothing under faults: PostgreSQL unreachable, Redis losing its keys,
RabbitMQ cut between stages, kill -9 during deliver, a poison message that kills its worker, and
DingTalk re-pushing after a late ACK.

One bot, real processes; the workers reach PostgreSQL and RabbitMQ through TCP proxies the test
cuts and restores (the shared services are never stopped), Redis "loses its keys" by deleting this
test's prefix. Each phase prints injected / ACKed / answered / duplicates / lost, its dead letters
(replayed as an operator would) and its recovery time, and ends with 0 lost and 0 duplicates.
`FAULT_OUTAGE_SECONDS` (15 by default, past the retry budget set here) sets the PostgreSQL outage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis

from sandbox.client import SandboxClient
from testkit import traffic
from testkit.ledger import Ledger
from testkit.stack import PYTHON, ROOT, Stack, wait_until
from testkit.tcpproxy import TcpProxy
from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS", "15"))
# A retry budget (2 retries, 0.5-2 s apart) far below the outage: messages reach the dead-letter
# path while PostgreSQL is away, so it is what is tested, not just a patient retry.
WORKER_ENV = {"TASK_MAX_RETRIES": "2", "TASK_RETRY_BACKOFF_SECONDS": "0.5",
              "TASK_RETRY_BACKOFF_MAX_SECONDS": "2", "WORKER_DELIVERY_LIMIT": "2"}
APP = "tests.support.fault_app"
POISON = "POISON-KILL-9"  # tests.support.fault_app routes it to the skill that SIGKILLs its worker


@dataclass
class Bot:
    """The stack with its proxies, one ledger for the whole run, and the phases' outcomes."""

    stack: Stack
    client: SandboxClient
    pg: TcpProxy
    broker: TcpProxy
    ledger: Ledger = field(default_factory=Ledger)
    sent: int = 0
    outcomes: list[str] = field(default_factory=list)

    def worker_env(self) -> dict[str, str]:
        return {**WORKER_ENV, "DATABASE_URL": self.pg.url_for(self.stack.database_url),
                "CELERY_BROKER_URL": self.broker.url_for(self.stack.broker_url)}

    def start_pipeline(self) -> None:
        self.stack.start_pipeline_worker(concurrency=6, app=APP, **self.worker_env())

    def start_skills(self) -> None:
        self.stack.start_skills_worker(concurrency=2, app=APP, **self.worker_env())

    def send(self, n: int, rate: float | None = None) -> set[str]:
        before = set(self.ledger.sent)
        traffic.send(self.client, self.ledger, n, start=self.sent, rate=rate, batch=10 if rate else 50)
        self.sent += n
        return set(self.ledger.sent) - before

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for reply in self.client.replies():
            msg_id = self.ledger.attribute(reply)
            if msg_id is not None:
                counts[msg_id] += 1
        return counts

    def wait_answered(self, ids: set[str], timeout: float, excused: Callable[[], set[str]] | None = None) -> None:
        wait_until(lambda: not (ids - set(self.counts()) - (excused() if excused else set())), timeout,
                   f"answers to {len(ids)} messages", interval=0.25)

    def report(self, name: str, ids: set[str], recovery: float, excused: set[str] | None = None,
               dead: int = 0) -> None:
        excused = excused or set()
        time.sleep(1.0)  # late duplicates would come now
        counts = self.counts()
        pushes = {p["msgId"]: p for p in self.client.pushes() if p["msgId"] in ids}
        lost = sorted(ids - set(counts) - excused)
        dups = sorted(m for m in ids if counts[m] > 1)
        line = (f"{name}: injected={len(ids)} acked={sum(p['acked'] for p in pushes.values())} "
                f"answered={sum(1 for m in ids if counts[m])} duplicates={len(dups)} lost={len(lost)} "
                f"excused={len(excused)} dead_letters_replayed={dead} "
                f"re-pushed={sum(max(0, p['count'] - 1) for p in pushes.values())} recovery={recovery:.1f}s")
        print("\n" + line)
        self.outcomes.append(line)
        assert not lost and not dups, line


def _replay_dead_letters(stack: Stack) -> int:
    """What an operator does after an outage: replay every pending dead letter (real command)."""
    from webapp.models import DeadLetter

    pending = DeadLetter.objects.filter(replayed_at__isnull=True).count()
    if pending:
        subprocess.run([PYTHON, "manage.py", "replay_dead_letters", "--all"], cwd=ROOT, env=stack.env(),
                       check=True, capture_output=True, timeout=120)
    return pending


def _settled(ids: set[str], bot: Bot) -> bool:
    """Every message answered or parked as a dead letter row (none still in flight)."""
    from webapp.models import DeadLetter

    dead = set(DeadLetter.objects.filter(msg_id__in=ids, replayed_at__isnull=True).values_list("msg_id", flat=True))
    return not (ids - set(bot.counts()) - dead)


def _delivery_unknown(ids: set[str]) -> Callable[[], set[str]]:
    from webapp.models import MessageRecord

    return lambda: set(MessageRecord.objects.filter(msg_id__in=ids, status="delivery_unknown")
                       .values_list("msg_id", flat=True))


def _forget_redis_keys(stack: Stack) -> int:
    client = redis.Redis.from_url(stack.redis_url)
    names = list(client.scan_iter(match=stack.redis_prefix + "*", count=1000))
    return client.delete(*names) if names else 0


def test_the_workers_lose_and_double_nothing_under_store_broker_and_process_faults(stack: Stack):
    pg, broker = TcpProxy(target_port=5432).start(), TcpProxy(target_port=5672).start()
    try:
        stack.start_sandbox(ping_interval=5, redelivery="all", redeliver_after=2)
        bot = Bot(stack, sandbox_control(stack), pg, broker)
        bot.start_pipeline()
        bot.start_skills()
        stack.start_listener()  # straight to the broker: the outages are the workers'
        bot.client.wait_for_state(connections=1, timeout=30)

        # 1. Redis loses every key of this deployment mid-traffic (claims, reply states, lines, sessions).
        ids = bot.send(60, rate=60)
        removed = _forget_redis_keys(stack)
        ids |= bot.send(40, rate=60)
        began = time.monotonic()
        bot.wait_answered(ids, 60)
        bot.report(f"redis lost {removed} keys", ids, time.monotonic() - began)

        # 3. RabbitMQ's connections to the workers killed between stages (hand-offs, acks in flight).
        ids = bot.send(40, rate=40)
        broker.cut()
        time.sleep(3)
        broker.restore()
        restored = time.monotonic()
        ids |= bot.send(20, rate=40)
        bot.wait_answered(ids, 90)
        bot.report("rabbitmq connections killed", ids, time.monotonic() - restored)

        # 4. kill -9 of the worker running deliver, mid-traffic; a reply cut mid-request is never resent.
        ids = bot.send(80, rate=80)
        wait_until(lambda: len(ids & set(bot.counts())) >= 20, 60, "the first answers")
        stack.kill(next(p for p in stack.procs if p.role == "worker-pipeline" and p.alive()), signal.SIGKILL)
        killed = time.monotonic()
        bot.start_pipeline()
        unknown = _delivery_unknown(ids)
        bot.wait_answered(ids, 90, excused=unknown)
        bot.report("kill -9 during deliver", ids, time.monotonic() - killed, excused=unknown())
        assert len(unknown()) <= 6, unknown()

        # 5. A poison message kills its worker on every run: dead-lettered after WORKER_DELIVERY_LIMIT.
        poison = bot.client.send_message(f"{POISON} now", user_id="poisoner", conversation_type="1")["msgId"]
        ids = bot.send(20, rate=40)
        began = time.monotonic()
        from webapp.models import DeadLetter

        wait_until(lambda: DeadLetter.objects.filter(msg_id=poison).exists(), 90, "the poison's dead letter")
        bot.wait_answered(ids, 60)
        letter = DeadLetter.objects.get(msg_id=poison)
        assert "its worker died during 2 runs" in letter.error and letter.stage == "run_skill", letter.error
        assert poison not in bot.counts()
        bot.report("poison kills its worker", ids, time.monotonic() - began)

        # 6. Every ACK arrives late: DingTalk re-pushes every message; each is answered once.
        bot.client.configure(ack_delay=2.5)
        ids = bot.send(40, rate=40)
        began = time.monotonic()
        bot.wait_answered(ids, 60)
        wait_until(lambda: sum(p["count"] > 1 for p in bot.client.pushes() if p["msgId"] in ids) >= len(ids) // 2,
                   30, "the re-pushes")
        bot.client.configure(ack_delay=0)
        bot.report("re-pushed after a late ACK", ids, time.monotonic() - began)
        # 7. PostgreSQL unreachable for the workers mid-traffic, past their retry budget.
        ids = bot.send(20, rate=20)
        pg.cut()
        ids |= bot.send(int(OUTAGE_SECONDS * 10), rate=10)
        pg.restore()
        restored = time.monotonic()
        wait_until(lambda: _settled(ids, bot), 90, "every message answered or dead-lettered", interval=0.5)
        dead = _replay_dead_letters(stack)
        bot.wait_answered(ids, 60)
        bot.report(f"postgresql down {OUTAGE_SECONDS:.0f}s", ids, time.monotonic() - restored, dead=dead)

    finally:
        pg.stop()
        broker.stop()
