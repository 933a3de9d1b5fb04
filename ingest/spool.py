"""The hand-off's side path: pushes the broker cannot take go to the journal (then ACKed), and come back in order."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ingest import fastjson
from ingest.buffer import Pending
from ingest.journal import Journal, JournalEntry
from ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)

AckFn = Callable[[list[Pending]], None]


def message_body(item: Pending) -> dict[str, Any]:
    """The envelope as a dict of its fields. Envelope.to_dict() (dataclasses.asdict) deep-copies
    the payload, which was the listener's largest CPU cost at 2,000 msgs/s; the publisher only
    serialises the dict, so a shallow copy of the frozen envelope's fields is equivalent."""
    return dict(vars(item.envelope))


class Spool:
    """Journal pushes and ACK them; hand journaled envelopes back for publishing, oldest first.

    While the journal holds anything the hand-off sends every new push there too, so envelopes
    reach the broker in the order they were journaled. A replayed envelope leaves the journal only
    once the broker confirmed it; after a broker failure replay starts again from the oldest row,
    so the broker may get an envelope twice, which the pipeline's msgId claim absorbs.
    """

    def __init__(self, journal: Journal, metrics: IngestMetrics, ack: AckFn) -> None:
        self.journal = journal
        self.metrics = metrics
        self._ack = ack
        self._cursor = 0  # highest seq handed out for replay since the last rewind
        self._full_logged = False
        self._drain_started: float | None = None

    @property
    def active(self) -> bool:
        """The journal holds envelopes: new pushes must queue behind them."""
        return self.journal.depth > 0

    # ---- into the journal ----------------------------------------------------------------------

    def keep(self, items: list[Pending]) -> tuple[list[Pending], list[Pending]]:
        """Journal `items` (one fsync'd commit), then ACK them on their sockets.

        Returns (not kept because the journal is full, not kept because they cannot be encoded).
        """
        encoded: list[tuple[str, bytes]] = []
        kept: list[Pending] = []
        bad: list[Pending] = []
        for item in items:
            try:
                encoded.append((item.envelope.msg_id, fastjson.dumps(message_body(item))))
                kept.append(item)
            except (TypeError, ValueError):
                bad.append(item)
        if not kept:
            return [], bad
        stored = self.journal.append(encoded)
        kept, full = kept[:stored], kept[stored:]
        if full:
            self._journal_full()
        elif self._full_logged:
            log.info("journal has room again (%d bytes of %d)", self.journal.size_bytes, self.journal.max_bytes)
            self._full_logged = False
        if kept:
            self.metrics.journaled.inc(len(kept))
            if log.isEnabledFor(logging.DEBUG):
                log.debug("journaled msgIds=%s", ",".join(p.envelope.msg_id for p in kept))
            self._ack(kept)
        return full, bad

    def _journal_full(self) -> None:
        if not self._full_logged:
            log.error(
                "journal full (%d envelopes, %d of INGEST_JOURNAL_MAX_BYTES=%d bytes): pushes stay "
                "un-ACKed until the broker drains it", self.journal.depth, self.journal.size_bytes,
                self.journal.max_bytes,
            )
            self._full_logged = True

    # ---- out of the journal ----------------------------------------------------------------------

    def next_batch(self, limit: int) -> tuple[list[JournalEntry], list[dict[str, Any]]]:
        """The next journaled envelopes to publish (after those already handed out)."""
        entries = self.journal.read(self._cursor, limit)
        good: list[JournalEntry] = []
        bodies: list[dict[str, Any]] = []
        for entry in entries:
            try:
                body = json.loads(entry.body)
            except ValueError as exc:
                self.journal.quarantine(entry, f"not JSON: {exc}")
                continue
            if not isinstance(body, dict):
                self.journal.quarantine(entry, "not a JSON object")
                continue
            good.append(entry)
            bodies.append(body)
        if entries:
            self._cursor = entries[-1].seq
            if self._drain_started is None:
                self._drain_started = time.monotonic()
                log.info("replaying %d journaled envelopes to the broker (oldest %.0fs old)",
                         self.journal.depth, self.journal.age_seconds())
        return good, bodies

    def confirmed(self, entries: list[JournalEntry], durable: list[bool]) -> None:
        """The broker's verdict on a replayed batch: confirmed rows leave the journal."""
        done = [e for e, ok in zip(entries, durable, strict=True) if ok]
        refused = [e for e, ok in zip(entries, durable, strict=True) if not ok]
        self.journal.remove(done)
        self.metrics.replayed.inc(len(done))
        if refused:
            log.warning("broker refused %d replayed envelopes; they stay journaled msgIds=%s",
                        len(refused), ",".join(e.msg_id for e in refused))
            self._cursor = min(self._cursor, refused[0].seq - 1)
        if self.journal.depth == 0 and self._drain_started is not None:
            log.info("journal drained in %.1fs; publishing directly again", time.monotonic() - self._drain_started)
            self._drain_started = None
            self._cursor = 0

    def rewind(self) -> None:
        """The broker connection failed: what was handed out and unconfirmed is sent again."""
        self._cursor = 0
        self._drain_started = None

    def unencodable(self, entry: JournalEntry, reason: str) -> None:
        self.journal.quarantine(entry, reason)
