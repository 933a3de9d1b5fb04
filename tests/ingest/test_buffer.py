"""The buffer between readers and the publisher holds at most its capacity, in order."""

import threading

from ingest.buffer import EnvelopeBuffer
from tests.ingest.conftest import RecordingSocket, pending


def test_offers_beyond_the_capacity_are_refused():
    buf = EnvelopeBuffer(capacity=3)
    sock = RecordingSocket()
    assert [buf.offer(pending(f"m{i}", sock)) for i in range(5)] == [True, True, True, False, False]
    assert len(buf) == 3


def test_items_being_published_still_count_against_the_capacity():
    buf = EnvelopeBuffer(capacity=2)
    sock = RecordingSocket()
    buf.offer(pending("a", sock))
    buf.offer(pending("b", sock))
    batch = buf.take(10, timeout=0)
    assert [p.envelope.msg_id for p in batch] == ["a", "b"]
    assert not buf.offer(pending("c", sock))
    buf.settle(2)
    assert buf.offer(pending("c", sock))


def test_a_batch_put_back_comes_out_first_and_in_order():
    buf = EnvelopeBuffer(capacity=10)
    sock = RecordingSocket()
    for name in "abcd":
        buf.offer(pending(name, sock))
    first = buf.take(2, timeout=0)
    buf.put_back(first)
    assert len(buf) == 4
    assert [p.envelope.msg_id for p in buf.take(10, timeout=0)] == ["a", "b", "c", "d"]


def _take_in_thread(buf: EnvelopeBuffer) -> tuple[threading.Thread, list]:
    """A take without a timeout: it can only come back by being woken."""
    got: list = []
    taker = threading.Thread(target=lambda: got.append(buf.take(10)), daemon=True)
    taker.start()
    return taker, got


def test_take_waits_for_an_offer():
    buf = EnvelopeBuffer(capacity=10)
    sock = RecordingSocket()
    taker, got = _take_in_thread(buf)
    buf.offer(pending("late", sock))
    taker.join(10)
    assert not taker.is_alive() and [p.envelope.msg_id for p in got[0]] == ["late"]


def test_close_wakes_a_waiting_take():
    buf = EnvelopeBuffer(capacity=10)
    taker, got = _take_in_thread(buf)
    buf.close()
    taker.join(10)
    assert not taker.is_alive() and got == [[]]
