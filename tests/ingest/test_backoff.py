"""Reconnect delays double from 1 s with jitter, stop at the cap, and start over after a reset."""

from ingest.backoff import Backoff


def test_delays_double_from_one_second_with_at_most_one_second_of_jitter():
    backoff = Backoff(initial=1.0, maximum=60.0)
    delays = [backoff.next_delay() for _ in range(6)]
    for attempt, delay in enumerate(delays):
        base = 2.0**attempt
        assert base <= delay <= base + 1.0


def test_delays_never_exceed_the_cap():
    backoff = Backoff(initial=1.0, maximum=60.0)
    delays = [backoff.next_delay() for _ in range(20)]
    assert max(delays) == 60.0
    assert delays[-1] == 60.0


def test_jitter_spreads_replicas_that_failed_together():
    delays = {round(Backoff(1.0, 60.0).next_delay(), 6) for _ in range(20)}
    assert len(delays) > 10


def test_a_reset_starts_again_at_the_first_delay():
    backoff = Backoff(initial=1.0, maximum=60.0)
    for _ in range(8):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert 1.0 <= backoff.next_delay() <= 2.0
