"""The per-conversation turnstile: earlier messages first, conversations independent, waits bounded."""

from __future__ import annotations

import time
from typing import NamedTuple

import pytest

from testkit.clock import FakeClock
from workers.errors import WaitForTurn
from workers.payload import Order
from workers.state import ordering


class Msg(NamedTuple):
    """What the turnstile knows of a message: its id and its place in line."""

    msg_id: str
    order: Order | None

    def admit(self, stage: str = "run_skill") -> Msg:
        ordering.admit(self.msg_id, self.order, stage)
        return self

    def finish(self) -> None:
        ordering.finish(self.msg_id, self.order)

    def touch(self) -> None:
        ordering.touch(self.msg_id, self.order)


def unregistered(msg_id: str, conversation: str = "cid-1", seq: float = 1000.0) -> Msg:
    return Msg(msg_id, Order("t", conversation, seq))


def register(msg_id: str, conversation: str = "cid-1", seq: float = 1000.0) -> Msg:
    return Msg(msg_id, ordering.register(msg_id, "t", conversation, seq)[0])


@pytest.fixture
def fast_turnstile(resources):
    return resources.set(ORDER_SPIN_SECONDS="0").settings


def test_the_earliest_message_goes_and_the_next_waits_until_it_is_finished(fast_turnstile):
    first, second = register("m1", seq=1000), register("m2", seq=2000)
    first.admit()
    with pytest.raises(WaitForTurn) as waiting:
        second.admit()
    assert waiting.value.ahead == 1 and 0 < waiting.value.countdown <= 2
    assert waiting.value.order.waiting_since  # the re-queued stage remembers since when it waits
    first.finish()
    Msg("m2", waiting.value.order).admit()


def test_the_order_is_create_time_not_registration_time(fast_turnstile):
    later = register("m-later", seq=5000)
    earlier = register("m-earlier", seq=4000)  # registered second, sent first
    earlier.admit("deliver")
    with pytest.raises(WaitForTurn):
        later.admit("deliver")


def test_equal_create_times_are_ordered_by_msg_id(fast_turnstile):
    b, a = register("msgB", seq=7000), register("msgA", seq=7000)
    a.admit("deliver")
    with pytest.raises(WaitForTurn):
        b.admit("deliver")


def test_other_conversations_never_wait(fast_turnstile):
    register("busy", conversation="cid-busy", seq=1)
    register("free", conversation="cid-free", seq=2).admit()


def test_a_message_that_was_never_registered_does_not_wait_and_does_not_block(fast_turnstile):
    unregistered("replayed", seq=10).admit("deliver")
    Msg("replayed-without-order", None).admit("deliver")
    register("live", seq=20).admit("deliver")


def test_registering_twice_keeps_one_entry(fast_turnstile, redis_conn):
    assert ordering.register("dup", "t", "cid-1", 1)[1] is True
    assert ordering.register("dup", "t", "cid-1", 1)[1] is False
    assert redis_conn.zcard(ordering.line_key("t", "cid-1")) == 1


def test_a_fresh_registration_settles_before_looking(resources):
    clock = FakeClock()
    settings = resources.set(ORDER_SPIN_SECONDS="0", clock=clock).settings
    register("s1", seq=1).admit()
    assert clock.sleeps == [pytest.approx(settings.order_settle_seconds)]  # then it looked, and went
    clock.sleeps.clear()
    Msg("s1", Order("t", "cid-1", 1, registered_at=clock.time() - 1)).admit()
    assert clock.sleeps == []  # registered long enough ago: no settling


def test_a_slow_message_that_keeps_moving_keeps_its_place(resources):
    resources.set(ORDER_SPIN_SECONDS="0", ORDER_MAX_WAIT_SECONDS="0.3")
    slow, late = register("slow", seq=1), register("late", seq=2)
    for _ in range(4):  # 0.6 s in all (Redis's clock: progress is stamped there), but a stage every 0.15 s
        time.sleep(0.15)
        slow.touch()
        with pytest.raises(WaitForTurn):
            late.admit()


def test_a_message_without_progress_stops_holding_the_line_and_progress_restores_it(redis_conn, resources):
    resources.set(ORDER_SPIN_SECONDS="0", ORDER_MAX_WAIT_SECONDS="0.3")
    stuck, late = register("stuck", seq=1), register("late", seq=2)
    with pytest.raises(WaitForTurn):
        late.admit("deliver")
    time.sleep(0.4)  # on Redis's clock, which stamps progress
    late.admit("deliver")  # stuck: no stage started for too long
    assert redis_conn.zscore(ordering.line_key("t", "cid-1"), "stuck") is not None  # not forgotten
    stuck.touch()  # it moves again (e.g. its retry started)
    with pytest.raises(WaitForTurn):
        late.admit("deliver")


def test_an_abandoned_entry_is_dropped_after_its_ttl(redis_conn, resources):
    resources.set(ORDER_SPIN_SECONDS="0", ORDER_MAX_WAIT_SECONDS="0.2", ORDER_ENTRY_TTL_SECONDS="0.3")
    register("crashed", seq=1)
    nxt = register("next", seq=2)
    with pytest.raises(WaitForTurn):
        nxt.admit("deliver")
    time.sleep(0.4)  # on Redis's clock
    nxt.admit("deliver")
    assert redis_conn.zscore(ordering.line_key("t", "cid-1"), "crashed") is None


def test_the_task_waits_in_place_briefly_before_requeueing(resources):
    clock = FakeClock()
    settings = resources.set(ORDER_SPIN_SECONDS="1.0", ORDER_POLL_SECONDS="0.1", clock=clock).settings
    first, second = register("a1", seq=1), register("a2", seq=2)
    clock.at(0.2, first.finish)  # the message ahead is answered 0.2 s into the wait
    second.admit("deliver")  # its turn came while it waited in place: no re-queue
    assert 0.2 <= clock.elapsed < settings.order_spin_seconds
    assert len(clock.sleeps) > 2  # it looked again and again in between


def test_a_wait_longer_than_the_spin_is_handed_back_to_the_broker(resources):
    clock = FakeClock()
    settings = resources.set(ORDER_SPIN_SECONDS="1.0", ORDER_POLL_SECONDS="0.1", clock=clock).settings
    register("b1", seq=1)
    with pytest.raises(WaitForTurn) as waiting:
        register("b2", seq=2).admit("deliver")
    waited = clock.elapsed - settings.order_settle_seconds  # after settling, it spun for the whole spin
    assert settings.order_spin_seconds - 0.05 <= waited <= settings.order_spin_seconds + 1e-6
    assert waiting.value.order.waiting_since == pytest.approx(clock.time())


def test_the_countdown_grows_with_the_line(fast_turnstile):
    for i in range(5):
        register(f"q{i}", seq=i)
    last = register("q-last", seq=99)
    with pytest.raises(WaitForTurn) as waiting:
        last.admit("deliver")
    assert waiting.value.ahead == 5
    assert waiting.value.countdown == pytest.approx(min(fast_turnstile.order_poll_seconds * 5, 2.0))


def test_a_backlog_longer_than_the_max_wait_keeps_its_place_and_is_answered_in_order(resources):
    # Issue 11: the first message was handed to a long queue; waiting there is not being stuck.
    resources.set(ORDER_SPIN_SECONDS="0", ORDER_MAX_WAIT_SECONDS="0.2", ORDER_ENTRY_TTL_SECONDS="30")
    first, second = register("first", seq=1), register("second", seq=2)
    ordering.queued(first.msg_id, first.order)  # preprocess handed it to the run_skill queue
    time.sleep(0.35)  # past ORDER_MAX_WAIT_SECONDS in the queue (Redis's clock)
    with pytest.raises(WaitForTurn):
        second.admit()
    first.admit().finish()  # its stage starts at last, runs and finishes
    second.admit()


def test_a_started_stage_without_progress_is_still_stuck_after_the_max_wait(resources):
    resources.set(ORDER_SPIN_SECONDS="0", ORDER_MAX_WAIT_SECONDS="0.2", ORDER_ENTRY_TTL_SECONDS="30")
    first, second = register("first", seq=1), register("second", seq=2)
    ordering.queued(first.msg_id, first.order)
    first.touch()  # a stage started (then its worker died, and the message never came back)
    time.sleep(0.35)
    second.admit()


def test_an_entry_without_a_progress_time_expires_instead_of_holding_the_line(redis_conn, resources):
    resources.set(ORDER_SPIN_SECONDS="0", ORDER_MAX_WAIT_SECONDS="0.2", ORDER_ENTRY_TTL_SECONDS="0.3")
    orphan, later = register("orphan", seq=1), register("later", seq=2)
    redis_conn.hdel(ordering.line_key("t", "cid-1") + ":at", "orphan")  # its progress time is gone
    with pytest.raises(WaitForTurn):
        later.admit()  # its clock starts now...
    time.sleep(0.4)
    later.admit()  # ...and it expires like any other entry, however often the key is refreshed
    assert redis_conn.zscore(ordering.line_key("t", "cid-1"), orphan.msg_id) is None
