"""A fake clock for the workers' Clock protocol: time moves only when the test (or a sleep) moves it."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable


class FakeClock:
    """`time()` and `monotonic()` read the same fake instant; `sleep(s)` advances it by s at once
    (recording the request in `sleeps`), running the callbacks `at()` scheduled on the way.

    With `tick`, every read by the thread that created the clock also advances it by `tick`: the
    code under test then sees time pass as it looks at the clock, while other threads (a producer
    waiting with `wait_until`) see the same instants without moving them.
    """

    def __init__(self, start: float = 1_800_000_000.0, tick: float = 0.0) -> None:
        self.now = start
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

    __call__ = monotonic  # for code that takes a `clock: Callable[[], float]`

    @property
    def elapsed(self) -> float:
        return self.now - self.start

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        """Move time forward, running each scheduled callback once its instant is passed."""
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
