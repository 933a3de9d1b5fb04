"""Clocks a test moves by hand: pass one as `clock=` to code that reads the time, then `advance` it.

ManualClock stands for one time function; FakeClock is the workers' whole Clock (time, monotonic,
sleep), with callbacks at given instants and, optionally, time that passes as the code looks.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable


class ManualClock:
    """Seconds that pass only when the test says so (stands for time.monotonic or time.time)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds


class FakeClock(ManualClock):
    """`time()` and `monotonic()` read the same fake instant; `sleep(s)` advances it by s at once
    (recording the request in `sleeps`), running the callbacks `at()` scheduled on the way.

    With `tick`, every read by the thread that created the clock also advances it by `tick`: the
    code under test then sees time pass as it looks at the clock, while other threads (a producer
    waiting with `wait_until`) see the same instants without moving them.
    """

    def __init__(self, start: float = 1_800_000_000.0, tick: float = 0.0) -> None:
        super().__init__(start)
        self.start = start
        self.tick = tick
        self.sleeps: list[float] = []
        self._owner = threading.get_ident()
        self._changed = threading.Condition()
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def _read(self) -> float:
        with self._changed:
            now = self.now
        if self.tick and threading.get_ident() == self._owner:
            self.advance(self.tick)
        return now

    def time(self) -> float:
        return self._read()

    def monotonic(self) -> float:
        return self._read()

    def __call__(self) -> float:  # for code that takes a `clock: Callable[[], float]`
        return self._read()

    @property
    def elapsed(self) -> float:
        return self.now - self.start

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        """Move time forward, running each scheduled callback once its instant is passed."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        target = self.now + seconds
        while True:
            with self._changed:
                if not self._due or self._due[0][0] > target:
                    self.now = target
                    self._changed.notify_all()
                    return
                at, _, callback = heapq.heappop(self._due)
                self.now = max(self.now, at)
                self._changed.notify_all()
            callback()

    def at(self, elapsed: float, callback: Callable[[], None]) -> None:
        """Run `callback` when the clock passes `start + elapsed`."""
        with self._changed:
            heapq.heappush(self._due, (self.start + elapsed, next(self._order), callback))

    def wait_until(self, elapsed: float, timeout: float = 10.0) -> bool:
        """Block (really) until the clock reaches `start + elapsed`; False after `timeout` real seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.now >= self.start + elapsed, timeout)
