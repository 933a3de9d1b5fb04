"""The clock the workers wait and time-stamp by: the system's in production, a fake one in tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall time (epoch s, for stamps that travel), monotonic time (for waits) and sleeping."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """time.time / time.monotonic / time.sleep."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
