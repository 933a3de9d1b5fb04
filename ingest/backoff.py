"""Reconnect delays: exponential back-off with jitter (tenacity's strategy), reset when healthy."""

from __future__ import annotations

import threading

from tenacity import RetryCallState, Retrying, wait_exponential_jitter


class Backoff:
    """Delays 1 s, 2 s, 4 s … capped, each plus up to `jitter` s; `reset()` after a healthy period.

    Thread-safe: the Stream supervisor and the broker publisher each own one, but tests and
    metrics read `attempts` from other threads.
    """

    def __init__(self, initial: float = 1.0, maximum: float = 60.0, jitter: float | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        # Jitter spreads replicas that lost the same peer at the same moment (no reconnect storms).
        self._wait = wait_exponential_jitter(
            multiplier=initial, max=maximum, jitter=initial if jitter is None else jitter
        )
        # The strategy reads only the attempt number of the call state it is given.
        self._state = RetryCallState(retry_object=Retrying(wait=self._wait), fn=None, args=(), kwargs={})
        self._attempts = 0
        self._lock = threading.Lock()

    @property
    def attempts(self) -> int:
        return self._attempts

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        with self._lock:
            self._attempts += 1
            self._state.attempt_number = self._attempts
            return float(self._wait(self._state))

    def reset(self) -> None:
        with self._lock:
            self._attempts = 0
