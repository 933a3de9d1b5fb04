"""A clock a test moves by hand: pass it as `clock=` to code that reads the time, then `advance` it."""

from __future__ import annotations


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
