"""When the broker cannot take a push the journal does (then it is ACKed), and gives it back in order."""

from __future__ import annotations

import functools
import time

import kombu
import pytest

from ingest.backoff import Backoff
from ingest.buffer import EnvelopeBuffer
from ingest.handoff import HandOff
from ingest.journal import Journal
from ingest.metrics import IngestMetrics
from ingest.publish import BrokerPublisher
from testkit.tcpproxy import tcp_proxy
from testkit.waits import wait_for
from tests.ingest.conftest import PREPROCESS_QUEUE, RecordingSocket, drain_queue, pending


def _handoff(url: str, journal: Journal, capacity: int = 1000, publisher: BrokerPublisher | None = None):
    buf = EnvelopeBuffer(capacity)
    metrics = IngestMetrics()
    metrics.watch_journal(journal)
    failures: list[BaseException] = []
    handoff = HandOff(
        buf, publisher or BrokerPublisher(url, confirm_timeout=2, connect_timeout=1), metrics, None,
        batch_max=50, backoff=Backoff(0.1, 0.5), journal=journal, on_failure=failures.append,
    )
    return handoff, buf, metrics, failures


def _metric(metrics: IngestMetrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _queued(url: str) -> list[str]:
    return [m.decode()[0][0]["msg_id"] for m in drain_queue(url)]


def _first_seen(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))  # a confirm lost in a cut may add a duplicate (the claim absorbs it)


@pytest.mark.slow
def test_while_the_broker_is_down_pushes_are_journaled_and_acked_then_replayed_in_order(rabbit_broker, tmp_path):
    journal = Journal(tmp_path, 1 << 20).open()
    with tcp_proxy() as proxy:
        handoff, buf, metrics, _ = _handoff(proxy.url_for(rabbit_broker), journal, capacity=20)
        sock = RecordingSocket()
        handoff.start()
        try:
            buf.offer(pending("first", sock))
            wait_for(lambda: sock.acked_message_ids() == ["mid-first"])
            proxy.cut()
            for i in range(60):  # three times the buffer: nothing is refused or left un-ACKed
                wait_for(functools.partial(buf.offer, pending(f"out-{i}", sock)), timeout=5)
            wait_for(lambda: len(sock.acked_message_ids()) == 61)
            assert journal.depth == 60  # every ACK after the journal had it on disk
            assert _metric(metrics, "ingest_journal_depth") == 60
            assert _metric(metrics, "ingest_journal_age_seconds") > 0
            assert _metric(metrics, "ingest_journaled_total") == 60
            proxy.restore()
            # New pushes while the journal drains queue behind the journaled ones.
            for i in range(60, 80):
                buf.offer(pending(f"out-{i}", sock))
            wait_for(lambda: journal.depth == 0 and len(buf) == 0, timeout=20)
            wait_for(lambda: len(sock.acked_message_ids()) == 81)
        finally:
            handoff.stop(1.0)
            journal.close()
    assert _metric(metrics, "ingest_replayed_total") >= 60
    assert _metric(metrics, "ingest_journal_age_seconds") == 0
    queued = _first_seen(_queued(rabbit_broker))
    assert queued == ["first"] + [f"out-{i}" for i in range(80)]


@pytest.mark.slow
def test_a_full_journal_stops_acking_and_the_rest_waits_for_the_broker(rabbit_broker, tmp_path):
    journal = Journal(tmp_path, 4000).open()  # room for a few envelopes of ~700 bytes
    with tcp_proxy() as proxy:
        proxy.cut()
        handoff, buf, _, _ = _handoff(proxy.url_for(rabbit_broker), journal, capacity=20)
        sock = RecordingSocket()
        handoff.start()
        try:
            for i in range(12):
                buf.offer(pending(f"m-{i}", sock))
            wait_for(lambda: journal.depth >= 1)
            time.sleep(1.0)
            acked = sock.acked_message_ids()
            assert 1 <= len(acked) < 12 and journal.depth == len(acked)
            assert len(buf) == 12 - len(acked)  # the rest is held, un-ACKed
            proxy.restore()
            wait_for(lambda: len(sock.acked_message_ids()) == 12, timeout=20)
        finally:
            handoff.stop(1.0)
            journal.close()
    assert _first_seen(_queued(rabbit_broker)) == [f"m-{i}" for i in range(12)]


@pytest.mark.slow
def test_stop_while_the_broker_is_down_journals_and_acks_what_is_left(rabbit_broker, tmp_path):
    journal = Journal(tmp_path, 1 << 20).open()
    with tcp_proxy() as proxy:
        proxy.cut()
        handoff, buf, _, _ = _handoff(proxy.url_for(rabbit_broker), journal)
        sock = RecordingSocket()
        for i in range(3):
            buf.offer(pending(f"stuck-{i}", sock))
        handoff.start()
        assert handoff.stop(0.5) == []
    assert sock.acked_message_ids() == ["mid-stuck-0", "mid-stuck-1", "mid-stuck-2"]
    assert [e.msg_id for e in journal.read(0, 10)] == ["stuck-0", "stuck-1", "stuck-2"]
    journal.close()


def test_a_new_hand_off_replays_what_an_earlier_run_left_in_the_journal(rabbit_broker, tmp_path):
    earlier = Journal(tmp_path, 1 << 20).open()
    sock = RecordingSocket()
    assert earlier.append([(f"old-{i}", _body(f"old-{i}", sock)) for i in range(5)]) == 5
    earlier.close()
    journal = Journal(tmp_path, 1 << 20).open()
    handoff, buf, metrics, _ = _handoff(rabbit_broker, journal)
    handoff.start()
    try:
        buf.offer(pending("new", sock))
        wait_for(lambda: journal.depth == 0 and sock.acked_message_ids() == ["mid-new"])
    finally:
        handoff.stop(1.0)
        journal.close()
    assert _queued(rabbit_broker) == [f"old-{i}" for i in range(5)] + ["new"]
    assert _metric(metrics, "ingest_replayed_total") >= 5  # "new" too, when it came while they replayed


def test_a_push_the_full_buffer_cannot_take_is_journaled_and_acked_by_its_reader(rabbit_broker, tmp_path):
    journal = Journal(tmp_path, 1 << 20).open()
    handoff, buf, _, _ = _handoff(rabbit_broker, journal, capacity=1)
    sock = RecordingSocket()
    buf.offer(pending("in-buffer", sock))
    spilled = pending("spilled", sock)
    assert not buf.offer(spilled)
    assert handoff.overflow(spilled)  # on the reader's thread: journal, then ACK
    assert sock.acked_message_ids() == ["mid-spilled"] and journal.depth == 1
    handoff.start()
    try:
        wait_for(lambda: journal.depth == 0 and len(sock.acked_message_ids()) == 2)
    finally:
        handoff.stop(1.0)
        journal.close()
    assert sorted(_queued(rabbit_broker)) == ["in-buffer", "spilled"]


def test_a_deleted_queue_never_means_a_confirmed_dropped_acked_message(rabbit_broker, tmp_path):
    journal = Journal(tmp_path, 1 << 20).open()
    publisher = BrokerPublisher(rabbit_broker, confirm_timeout=2, connect_timeout=1)
    handoff, buf, _, _ = _handoff(rabbit_broker, journal, publisher=publisher)
    sock = RecordingSocket()
    handoff.start()
    try:
        buf.offer(pending("before", sock))
        wait_for(lambda: sock.acked_message_ids() == ["mid-before"])
        with kombu.Connection(rabbit_broker) as conn:  # an operator deletes the queue
            conn.default_channel.queue_delete(PREPROCESS_QUEUE)
        for i in range(5):
            buf.offer(pending(f"after-{i}", sock))
        wait_for(lambda: len(sock.acked_message_ids()) == 6)
    finally:
        handoff.stop(1.0)
        journal.close()
    assert publisher.returned >= 1  # the broker said "unroutable" instead of confirming it away
    assert sorted(_queued(rabbit_broker)) == [f"after-{i}" for i in range(5)]


class _BrokenPublisher(BrokerPublisher):
    """A bug in the publisher's connect, outside what the hand-off expects to fail."""

    def connect(self) -> None:
        raise RuntimeError("a bug")


def test_when_the_hand_off_thread_dies_it_says_so_and_what_it_held_is_journaled_at_stop(tmp_path):
    journal = Journal(tmp_path, 1 << 20).open()
    handoff, buf, _, failures = _handoff("amqp://guest:guest@127.0.0.1:5672//", journal,
                                               publisher=_BrokenPublisher("amqp://127.0.0.1:1//"))
    sock = RecordingSocket()
    buf.offer(pending("held", sock))
    handoff.start()
    wait_for(lambda: not handoff.alive)
    assert [type(f) for f in failures] == [RuntimeError] and handoff.failure is failures[0]
    assert handoff.stop(0.5) == []
    assert sock.acked_message_ids() == ["mid-held"] and journal.depth == 1
    journal.close()


def _body(msg_id: str, sock: RecordingSocket) -> bytes:
    from ingest import fastjson
    from ingest.spool import message_body

    return fastjson.dumps(message_body(pending(msg_id, sock)))
