"""The AI-core governor on a real Redis: the limit, leases that expire, retries that keep their slot,
fair shares across conversations, bounded waits, predicted waits and the metrics."""

from __future__ import annotations

import pytest
import redis as redis_lib

from testkit.clock import FakeClock
from workers import governor
from workers.governor import Governor, SlotTimeout, predicted_wait

EP = "http://127.0.0.1:8080/v1"


@pytest.fixture
def client():
    c = redis_lib.Redis.from_url("redis://127.0.0.1:6379/0", decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def clock():
    return FakeClock()


def make(client, redis_prefix, clock, limit=2, **kw) -> Governor:
    gov = Governor(client, redis_prefix, limit, clock=clock, **kw)
    return gov


def test_no_more_than_the_limit_hold_a_slot_and_a_release_lets_the_next_in(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=2)
    assert gov.try_acquire(EP, "m1", "c1")[0]
    assert gov.try_acquire(EP, "m2", "c2")[0]
    granted, rank, used = gov.try_acquire(EP, "m3", "c3")
    assert (granted, rank, used) == (False, 0, 2)
    assert gov.in_use(EP) == 2
    gov.release(EP, "m1", held_seconds=1.0)
    assert gov.try_acquire(EP, "m3", "c3")[0]
    assert gov.in_use(EP) == 2


def test_two_governors_share_one_limit(client, redis_prefix, clock):
    """Two worker processes (two instances, one Redis) never hold more than the limit together."""
    a, b = make(client, redis_prefix, clock, limit=3), make(client, redis_prefix, clock, limit=3)
    grants = [gov.try_acquire(EP, f"m{i}", f"c{i}")[0] for i, gov in enumerate([a, b, a, b, a, b])]
    assert grants == [True, True, True, False, False, False]


def test_other_endpoints_have_their_own_slots(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    assert gov.try_acquire(EP, "m1", "c1")[0]
    assert gov.try_acquire("http://10.0.0.2:8080/v1", "m2", "c2")[0]


def test_a_dead_workers_slot_comes_back_when_its_lease_runs_out(client, redis_prefix, clock):
    dead = make(client, redis_prefix, clock, limit=1, lease_seconds=15)
    dead.try_acquire(EP, "m1", "c1")
    live = make(client, redis_prefix, clock, limit=1, lease_seconds=15)
    assert not live.try_acquire(EP, "m2", "c2")[0]
    clock.advance(16)  # the dead process never renewed
    assert live.try_acquire(EP, "m2", "c2")[0]


def test_a_renewed_lease_keeps_the_slot(client, redis_prefix, clock):
    holder = make(client, redis_prefix, clock, limit=1, lease_seconds=15)
    holder.try_acquire(EP, "m1", "c1")
    for _ in range(4):
        clock.advance(10)
        holder.renew()  # what the renewer thread does every lease / 3
    other = make(client, redis_prefix, clock, limit=1)
    assert not other.try_acquire(EP, "m2", "c2")[0]
    holder.close()


def test_a_redelivered_copy_takes_over_its_own_slot(client, redis_prefix, clock):
    """A killed task's redelivery (same msgId) does not need a second slot."""
    gov = make(client, redis_prefix, clock, limit=1)
    assert gov.try_acquire(EP, "m1", "c1")[0]
    assert gov.try_acquire(EP, "m1", "c1")[0]
    assert gov.in_use(EP) == 1


def test_a_chatty_conversation_does_not_get_the_slot_another_waits_for(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=4)
    for i in range(3):
        assert gov.try_acquire(EP, f"x{i}", "group-x")[0]
    assert gov.try_acquire(EP, "y0", "group-y")[0]
    # Full. Group X asks first, then Y.
    assert not gov.try_acquire(EP, "x3", "group-x")[0]
    clock.advance(0.01)
    assert not gov.try_acquire(EP, "y1", "group-y")[0]
    gov.release(EP, "x0")
    # X holds 2 of 4 with two conversations in play (fair share 2): Y's waiter is first in line.
    assert not gov.try_acquire(EP, "x3", "group-x")[0]
    assert gov.try_acquire(EP, "y1", "group-y")[0]


def test_slots_nobody_else_wants_go_to_the_chatty_conversation(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=4)
    for i in range(2):
        assert gov.try_acquire(EP, f"x{i}", "group-x")[0]
    assert gov.try_acquire(EP, "y0", "group-y")[0]
    # X is at its fair share (2), but no one else waits: the free slot is not left idle.
    assert gov.try_acquire(EP, "x2", "group-x")[0]


def test_waiters_are_served_in_arrival_order(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    gov.try_acquire(EP, "m0", "c0")
    for i in (1, 2, 3):
        clock.advance(0.01)
        assert gov.try_acquire(EP, f"m{i}", f"c{i}")[:2] == (False, i - 1)
    gov.release(EP, "m0")
    assert not gov.try_acquire(EP, "m3", "c3")[0]
    assert not gov.try_acquire(EP, "m2", "c2")[0]
    assert gov.try_acquire(EP, "m1", "c1")[0]


def test_a_waiter_that_stopped_asking_is_forgotten(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    gov.try_acquire(EP, "m0", "c0")
    gov.try_acquire(EP, "gone", "c1")  # then its process died
    clock.advance(governor.WAITER_TTL_SECONDS + 1)
    gov.renew()
    gov.try_acquire(EP, "m2", "c2")
    gov.release(EP, "m0")
    assert gov.try_acquire(EP, "m2", "c2")[0]


def test_a_wait_is_bounded_and_leaves_no_waiter_behind(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    gov.try_acquire(EP, "m0", "c0")
    ranks: list[int] = []
    with pytest.raises(SlotTimeout):
        gov.acquire(EP, "m1", "c1", timeout=3.0, on_wait=ranks.append)
    assert clock.elapsed >= 3.0
    assert ranks and set(ranks) == {0}  # the caller heard about its place about once a second
    assert client.zcard(gov.keys(EP)["waiters"]) == 0


def test_a_message_that_gave_up_is_no_longer_ahead(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    gov.try_acquire(EP, "m0", "c0")
    gov.enqueue(EP, "m1")
    with pytest.raises(SlotTimeout):
        gov.acquire(EP, "m1", "c1", timeout=1.0)
    assert gov.enqueue(EP, "m2").ahead == 0


def test_slot_holds_for_the_block_and_times_the_hold(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    with gov.slot(EP, "m1", "c1", timeout=1.0) as waited:
        assert waited == 0.0
        assert gov.in_use(EP) == 1
        assert governor.SLOTS_IN_USE.labels(EP)._value.get() == 1
        clock.advance(4.0)
    assert gov.in_use(EP) == 0
    hold = float(client.get(gov.keys(EP)["hold"]))
    assert hold == pytest.approx(governor.DEFAULT_HOLD_SECONDS * 0.8 + 4.0 * 0.2)


def test_slot_is_released_when_the_answer_fails(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=1)
    with pytest.raises(RuntimeError), gov.slot(EP, "m1", "c1", timeout=1.0):
        raise RuntimeError("skill crashed")
    assert gov.in_use(EP) == 0


def test_without_a_limit_or_endpoint_the_slot_is_a_no_op(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=0)
    with gov.slot(EP, "m1", "c1", timeout=0.0) as waited:
        assert waited == 0.0
    assert client.exists(gov.keys(EP)["holders"]) == 0


def test_enqueue_counts_the_messages_ahead_and_a_grant_removes_it(client, redis_prefix, clock):
    gov = make(client, redis_prefix, clock, limit=2)
    for i in range(5):
        clock.advance(0.01)
        standing = gov.enqueue(EP, f"m{i}")
        assert standing.ahead == i
    assert gov.enqueue(EP, "m2").ahead == 2  # a retried preprocess keeps its place
    gov.try_acquire(EP, "m0", "c0")
    assert gov.enqueue(EP, "m4").ahead == 3


def test_the_predicted_wait_counts_answers_that_must_end_first():
    assert predicted_wait(ahead=0, in_use=1, limit=2, hold_seconds=3.0) == 0.0  # a slot is free
    assert predicted_wait(ahead=0, in_use=2, limit=2, hold_seconds=3.0) == 3.0
    assert predicted_wait(ahead=5, in_use=2, limit=2, hold_seconds=3.0) == 9.0
    assert predicted_wait(ahead=100, in_use=0, limit=0, hold_seconds=3.0) == 0.0  # no limit
