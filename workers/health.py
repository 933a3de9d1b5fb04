"""Worker readiness for compose healthchecks: a heartbeat file a consumer bootstep touches, and its check.

`python -m workers.health [--file PATH] [--max-age SECONDS]` exits 0 when the file was touched
recently, 1 otherwise: far lighter than `celery inspect ping` (no broker round trip, no Django).
The step lives in the consumer's blueprint, so it beats only while the worker is connected to the
broker and consuming: a lost connection stops it (and removes the file) until the consumer is back.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from celery import bootsteps

from conf.settings import get_settings

# A file older than this many intervals means the worker stopped beating (blocked, disconnected).
STALE_INTERVALS = 3


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


class Heartbeat(bootsteps.StartStopStep):
    """Touches WORKER_HEARTBEAT_FILE every WORKER_HEARTBEAT_SECONDS on the consumer's timer."""

    requires = {"celery.worker.consumer.tasks:Tasks"}  # after the consumer consumes from its queues

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        settings = get_settings()
        self.path = Path(settings.worker_heartbeat_file) if settings.worker_heartbeat_file else None
        self.interval = settings.worker_heartbeat_seconds
        self.tref: Any = None

    def start(self, consumer: Any) -> None:
        if self.path is None:
            return
        path = self.path
        touch(path)
        # The consumer's own event loop runs this timer: a loop that hangs stops the heartbeat too.
        self.tref = consumer.timer.call_repeatedly(self.interval, touch, (path,), priority=10)

    def stop(self, consumer: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    shutdown = stop


def start_beat_heartbeat(stop: threading.Event | None = None) -> threading.Thread | None:
    """Beat has no consumer: a daemon thread touches its heartbeat file (the process is alive and
    its scheduler loop has started; beat sends through the broker lazily, so that is all there is).
    `stop` ends the thread (tests); beat's own lives as long as the process."""
    settings = get_settings()
    if not settings.worker_heartbeat_file:
        return None
    path, interval = Path(settings.worker_heartbeat_file), settings.worker_heartbeat_seconds
    waiter = stop if stop is not None else threading.Event()  # never set in beat itself

    def beat() -> None:
        touch(path)
        while not waiter.wait(interval):
            touch(path)

    thread = threading.Thread(target=beat, name="beat-heartbeat", daemon=True)
    thread.start()
    return thread


def heartbeat_age(path: Path, now: float | None = None) -> float | None:
    """Seconds since the file was touched, None when there is none."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return (time.time() if now is None else now) - mtime


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m workers.health", description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=settings.worker_heartbeat_file, help="the heartbeat file")
    parser.add_argument("--max-age", type=float, default=settings.worker_heartbeat_seconds * STALE_INTERVALS,
                        help="seconds after which the heartbeat is stale")
    args = parser.parse_args(argv)
    if not args.file:
        print("not ready: WORKER_HEARTBEAT_FILE is not set", file=sys.stderr)
        return 1
    age = heartbeat_age(Path(args.file))
    if age is None:
        print(f"not ready: no heartbeat at {args.file} (not consuming)", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"not ready: heartbeat {age:.0f} s old (> {args.max_age:.0f} s)", file=sys.stderr)
        return 1
    print(f"ready: heartbeat {age:.1f} s old")
    return 0


if __name__ == "__main__":
    sys.exit(main())
