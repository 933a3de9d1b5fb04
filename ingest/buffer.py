"""The bounded hand-off between socket readers and the publisher: envelopes not yet durable."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from contract.envelope import Envelope
from ingest.protocol import Frame


class AckTarget(Protocol):
    """The socket a push came on; the ACK must go back on that one (or nowhere)."""

    name: str

    def send_text(self, text: str) -> bool: ...

    def send_texts(self, texts: list[str]) -> bool: ...


@dataclass(frozen=True)
class Pending:
    """One push waiting to become durable, with what is needed to ACK it afterwards."""

    envelope: Envelope
    frame: Frame
    target: AckTarget
    read_at: float  # time.monotonic() when the frame was read, for ACK latency


class EnvelopeBuffer:
    """At most `capacity` envelopes between read and ACK (queued plus being published).

    `offer` never blocks: a reader must keep answering pings while the broker is down, so a full
    (or, at shutdown, closed) buffer refuses and the reader journals the push itself.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[Pending] = deque()
        self._in_flight = 0
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    @property
    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, item: Pending) -> bool:
        """Queue `item`; False when the buffer is full or closed (the caller must keep it elsewhere)."""
        with self._cond:
            if self._closed or len(self._queue) + self._in_flight >= self.capacity:
                return False
            self._queue.append(item)
            self._cond.notify()
            return True

    def take(self, max_items: int, timeout: float | None = None) -> list[Pending]:
        """Wait up to `timeout` for items; move up to `max_items` of them in flight."""
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait(timeout)
            batch: list[Pending] = []
            while self._queue and len(batch) < max_items:
                batch.append(self._queue.popleft())
            self._in_flight += len(batch)
            return batch

    def settle(self, count: int) -> None:
        """`count` in-flight items are finished (ACKed, or given up and left un-ACKed)."""
        with self._cond:
            self._in_flight = max(0, self._in_flight - count)

    def put_back(self, items: Iterable[Pending]) -> None:
        """Return in-flight items to the front, oldest first, to be published again later."""
        items = list(items)
        with self._cond:
            self._in_flight = max(0, self._in_flight - len(items))
            self._queue.extendleft(reversed(items))
            self._cond.notify()

    def close(self) -> None:
        """Wake a waiting `take` for shutdown; queued items stay available."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain_queued(self) -> list[Pending]:
        """Remove and return everything still queued (shutdown: these stay un-ACKed)."""
        with self._cond:
            items = list(self._queue)
            self._queue.clear()
            return items
