"""Wait for something another thread or process does: poll a check until it holds (no fixed sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "", interval: float = 0.02) -> T:
    """Poll `check()` until it returns something truthy and return that; TimeoutError (naming
    `what`) after `timeout` s. The timeout only bounds how long a failure takes to show."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or check}")
        time.sleep(interval)
