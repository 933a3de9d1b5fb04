"""The per-conversation turnstile: earlier messages first, conversations independent, waits bounded."""

from __future__ import annotations

import time

import pytest

from workers.errors import WaitForTurn
from workers.state import ordering


def payload(msg_id: str, conversation: str = "cid-1", seq: float = 1000.0, **extra) -> dict:
    return {"msg_id": msg_id, "order": {"tenant_id": "t", "conversation_id": conversation, "seq": seq}, **extra}


def register(msg_id: str, conversation: str = "cid-1", seq: float = 1000.0) -> dict:
    return {"msg_id": msg_id, "order": ordering.register(msg_id, "t", conversation, seq)[0]}


@pytest.fixture
def fast_turnstile(worker_settings, monkeypatch):
    from conf.settings import get_settings

    monkeypatch.setenv("ORDER_SPIN_SECONDS", "0")
    get_settings.cache_clear()
    return get_settings()


def test_the_earliest_message_goes_and_the_next_waits_until_it_is_finished(fast_turnstile):
    first, second = register("m1", seq=1000), register("m2", seq=2000)
    assert ordering.admit(first, "run_skill") is first
    with pytest.raises(WaitForTurn) as waiting:
        ordering.admit(second, "run_skill")
    assert waiting.value.ahead == 1 and 0 < waiting.value.countdown <= 2
    ordering.finish(first)
    assert ordering.admit(waiting.value.payload, "run_skill")["msg_id"] == "m2"


def test_the_order_is_create_time_not_registration_time(fast_turnstile):
    later = register("m-later", seq=5000)
    earlier = register("m-earlier", seq=4000)  # registered second, sent first
    ordering.admit(earlier, "deliver")
    with pytest.raises(WaitForTurn):
        ordering.admit(later, "deliver")


def test_equal_create_times_are_ordered_by_msg_id(fast_turnstile):
    b, a = register("msgB", seq=7000), register("msgA", seq=7000)
    ordering.admit(a, "deliver")
    with pytest.raises(WaitForTurn):
        ordering.admit(b, "deliver")


def test_other_conversations_never_wait(fast_turnstile):
    register("busy", conversation="cid-busy", seq=1)
    other = register("free", conversation="cid-free", seq=2)
    assert ordering.admit(other, "run_skill") is other


def test_a_message_that_was_never_registered_does_not_wait_and_does_not_block(fast_turnstile):
    replayed = payload("replayed", seq=10)
    assert ordering.admit(replayed, "deliver") is replayed
    live = register("live", seq=20)
    assert ordering.admit(live, "deliver") is live


def test_registering_twice_keeps_one_entry(fast_turnstile, redis_conn):
    assert ordering.register("dup", "t", "cid-1", 1)[1] is True
    assert ordering.register("dup", "t", "cid-1", 1)[1] is False
    assert redis_conn.zcard(ordering.Slot("t", "cid-1", 1).zset()) == 1


def test_a_fresh_registration_settles_before_looking(fast_turnstile):
    first = register("s1", seq=1)
    started = time.monotonic()
    ordering.admit(first, "run_skill")
    assert time.monotonic() - started >= fast_turnstile.order_settle_seconds * 0.9


def test_a_slow_message_that_keeps_moving_keeps_its_place(worker_settings, monkeypatch):
    from conf.settings import get_settings

    monkeypatch.setenv("ORDER_SPIN_SECONDS", "0")
    monkeypatch.setenv("ORDER_MAX_WAIT_SECONDS", "0.3")
    get_settings.cache_clear()
    slow, late = register("slow", seq=1), register("late", seq=2)
    for _ in range(4):  # 0.6 s in all, but a stage started every 0.15 s
        time.sleep(0.15)
        ordering.touch(slow)
        with pytest.raises(WaitForTurn):
            ordering.admit(late, "run_skill")


def test_a_message_without_progress_stops_holding_the_line_and_progress_restores_it(worker_settings,
                                                                                   monkeypatch, redis_conn):
    from conf.settings import get_settings

    monkeypatch.setenv("ORDER_SPIN_SECONDS", "0")
    monkeypatch.setenv("ORDER_MAX_WAIT_SECONDS", "0.3")
    get_settings.cache_clear()
    stuck, late = register("stuck", seq=1), register("late", seq=2)
    with pytest.raises(WaitForTurn):
        ordering.admit(late, "deliver")
    time.sleep(0.4)
    assert ordering.admit(late, "deliver") is late  # stuck: no stage started for too long
    assert redis_conn.zscore(ordering.Slot("t", "cid-1", 1).zset(), "stuck") is not None  # not forgotten
    ordering.touch(stuck)  # it moves again (e.g. its retry started)
    with pytest.raises(WaitForTurn):
        ordering.admit(late, "deliver")


def test_an_abandoned_entry_is_dropped_after_its_ttl(worker_settings, monkeypatch, redis_conn):
    from conf.settings import get_settings

    monkeypatch.setenv("ORDER_SPIN_SECONDS", "0")
    monkeypatch.setenv("ORDER_MAX_WAIT_SECONDS", "0.2")
    monkeypatch.setenv("ORDER_ENTRY_TTL_SECONDS", "0.3")
    get_settings.cache_clear()
    register("crashed", seq=1)
    nxt = register("next", seq=2)
    with pytest.raises(WaitForTurn):
        ordering.admit(nxt, "deliver")
    time.sleep(0.4)
    assert ordering.admit(nxt, "deliver") is nxt
    assert redis_conn.zscore(ordering.Slot("t", "cid-1", 1).zset(), "crashed") is None


def test_the_task_waits_in_place_briefly_before_requeueing(worker_settings, monkeypatch):
    import threading

    from conf.settings import get_settings

    monkeypatch.setenv("ORDER_SPIN_SECONDS", "1.0")
    monkeypatch.setenv("ORDER_POLL_SECONDS", "0.1")
    get_settings.cache_clear()
    first, second = register("a1", seq=1), register("a2", seq=2)
    threading.Timer(0.2, ordering.finish, args=(first,)).start()
    started = time.monotonic()
    assert ordering.admit(second, "deliver") is second
    assert 0.15 < time.monotonic() - started < 1.0


def test_the_countdown_grows_with_the_line(fast_turnstile):
    for i in range(5):
        register(f"q{i}", seq=i)
    last = register("q-last", seq=99)
    with pytest.raises(WaitForTurn) as waiting:
        ordering.admit(last, "deliver")
    assert waiting.value.ahead == 5
    assert waiting.value.countdown == pytest.approx(min(fast_turnstile.order_poll_seconds * 5, 2.0))
