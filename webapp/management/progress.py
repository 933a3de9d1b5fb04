"""Progress of long management commands: a bar with counts and ETA on a terminal (rich), plain
periodic lines when the output is a file or a pipe (logs, CI, `docker compose logs`).

    with progress("embedding examples", total=len(texts), stream=self.stderr) as bar:
        for batch in batches:
            ...
            bar.advance(len(batch))

`total` may grow while the work is found (`bar.grow(n)`); `bar.callback` is the `(done, more)`
function skills.routing's embedding cache reports to. Progress goes to the command's stderr, so
its stdout (an export's JSON) stays clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Without a terminal: a line at most this often (and one at the start and at the end).
LINE_SECONDS = 10.0


class Stream(Protocol):
    def write(self, text: str) -> Any: ...
    def flush(self) -> Any: ...


def is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # closed
        return False


def _duration(value: float) -> str:
    seconds = max(0, round(value))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Bar:
    """One task's progress; subclasses draw it."""

    def __init__(self, what: str, total: int | None) -> None:
        self.what = what
        self.total = total
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def grow(self, n: int) -> None:
        """More work was found (embedding: the texts a second model still lacks)."""
        self.total = (self.total or 0) + n
        self._draw()

    def callback(self, done: int, more: int) -> None:
        if more:
            self.grow(more)
        if done:
            self.advance(done)

    def note(self, text: str) -> None:
        """A line about the step now running (e.g. "fitting the classifier")."""

    def _draw(self) -> None: ...

    def close(self) -> None: ...


class LineBar(Bar):
    """Plain lines: `what: 1500/15000 (10%), 25.0/s, ETA 9m00s`, at most every LINE_SECONDS."""

    def __init__(self, what: str, total: int | None, stream: Stream, every: float = LINE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(what, total)
        self.stream, self.every, self.clock = stream, every, clock
        self.started = clock()
        self._last = float("-inf")
        self._line(force=True)

    def _line(self, force: bool = False, final: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last < self.every:
            return
        self._last = now
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if final:
            text = f"{self.what}: done, {self.done}{f'/{self.total}' if self.total else ''} in {_duration(elapsed)}"
        elif self.total:
            eta = _duration((self.total - self.done) / rate) if rate > 0 else "?"
            text = (f"{self.what}: {self.done}/{self.total} ({100 * self.done / self.total:.0f}%), "
                    f"{rate:.1f}/s, ETA {eta}")
        else:
            text = f"{self.what}: {self.done}, {rate:.1f}/s"
        self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self) -> None:
        self._line()

    def note(self, text: str) -> None:
        self.stream.write(f"{self.what}: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        self._line(force=True, final=True)


class TerminalBar(Bar):
    """rich's live bar: description, bar, done/total, percent, elapsed, ETA."""

    def __init__(self, what: str, total: int | None, stream: Stream) -> None:
        super().__init__(what, total)
        self.console = Console(file=stream, force_terminal=True)  # type: ignore[arg-type]  # a text stream
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
            refresh_per_second=4,
        )
        self.progress.start()
        self.task = self.progress.add_task(what, total=total)

    def _draw(self) -> None:
        self.progress.update(self.task, completed=self.done, total=self.total)

    def note(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.what} · {text}")

    def close(self) -> None:
        self._draw()
        self.progress.stop()


@contextmanager
def progress(what: str, total: int | None = None, stream: Any = None, *, terminal: bool | None = None,
             every: float = LINE_SECONDS) -> Iterator[Bar]:
    """A bar on a terminal, periodic lines otherwise (`terminal` forces one or the other)."""
    import sys

    stream = sys.stderr if stream is None else stream
    bar: Bar = (TerminalBar(what, total, stream) if (is_terminal(stream) if terminal is None else terminal)
                else LineBar(what, total, stream, every))
    try:
        yield bar
    finally:
        bar.close()
