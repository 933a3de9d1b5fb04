"""The listener's local journal: envelopes the broker could not take, fsync'd before their ACK, replayed in order."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "journal.sqlite3"
LOCK_NAME = "journal.lock"
# What one row costs beyond its envelope (key, msgId, time, b-tree): counted against the bound so
# many small envelopes cannot exceed it unnoticed.
ROW_OVERHEAD_BYTES = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    written_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL,
    written_at REAL NOT NULL,
    body BLOB NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
"""


class JournalLocked(RuntimeError):
    """Another listener holds this journal; each listener needs its own INGEST_JOURNAL_DIR."""


@dataclass(frozen=True)
class JournalEntry:
    """One journaled envelope: `body` is its JSON, exactly as it would have gone to the broker."""

    seq: int
    msg_id: str
    written_at: float
    body: bytes


class Journal:
    """Envelopes in SQLite (WAL, synchronous=FULL: each commit is on disk before it returns).

    Rows are kept in arrival order (`seq`) until the broker confirms their replay. The bound
    (`max_bytes`, envelopes plus a per-row allowance) makes `append` refuse instead of filling the
    disk; a msgId already journaled is kept once. Every method is thread-safe: the hand-off thread
    journals and replays, socket readers journal what the buffer cannot hold.
    """

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._clock = clock
        # One lock for the database and the counters: readers journal while the hand-off replays.
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._lock_file: int | None = None
        self._depth = 0
        self._bytes = 0
        self._oldest_at: float | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    def open(self) -> Journal:
        """Create or reopen the journal; raises JournalLocked when another process holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise JournalLocked(
                f"the journal in {self.directory} is in use by another listener; give each listener "
                "its own INGEST_JOURNAL_DIR"
            ) from None
        self._lock_file = lock_fd
        path = self.directory / FILE_NAME
        created = not path.exists()
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        if created:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only effective before the first table
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(_SCHEMA)
        if created:
            _fsync_directory(self.directory)  # the new file's name is durable too
        self._db = db
        self._recount()
        return self

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                db.close()
            if self._lock_file is not None:
                os.close(self._lock_file)  # releases the flock
                self._lock_file = None

    # ---- state -------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Envelopes journaled and not yet confirmed by the broker."""
        return self._depth

    @property
    def size_bytes(self) -> int:
        """What counts against `max_bytes`."""
        return self._bytes

    def age_seconds(self) -> float:
        """Age of the oldest journaled envelope (0 when empty)."""
        oldest = self._oldest_at
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def full_for(self, size: int) -> bool:
        return self._bytes + size + ROW_OVERHEAD_BYTES > self.max_bytes

    # ---- writing and replaying -----------------------------------------------------------------

    def append(self, entries: list[tuple[str, bytes]]) -> int:
        """Journal (msg_id, body) pairs in one fsync'd commit, as many from the front as the bound
        allows; returns how many. Once it has returned, those pushes may be ACKed."""
        if not entries:
            return 0
        now = self._clock()
        with self._lock:
            room = self.max_bytes - self._bytes
            fits = 0
            added = 0
            for _, body in entries:
                size = len(body) + ROW_OVERHEAD_BYTES
                if added + size > room:
                    break
                added += size
                fits += 1
            if not fits:
                return 0
            with self._transaction() as db:
                before = db.total_changes
                db.executemany(
                    "INSERT OR IGNORE INTO envelopes (msg_id, written_at, body) VALUES (?, ?, ?)",
                    [(msg_id, now, body) for msg_id, body in entries[:fits]],
                )
                inserted = db.total_changes - before
            if inserted == fits:
                self._depth += inserted
                self._bytes += added
                if self._oldest_at is None:
                    self._oldest_at = now
            else:  # some msgIds were journaled already (a re-push): count what is really there
                self._recount()
        return fits

    def read(self, after_seq: int, limit: int) -> list[JournalEntry]:
        """Up to `limit` envelopes with seq > `after_seq`, oldest first."""
        with self._lock:
            rows = self._conn().execute(
                "SELECT seq, msg_id, written_at, body FROM envelopes WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [JournalEntry(int(s), str(m), float(w), bytes(b)) for s, m, w, b in rows]

    def remove(self, entries: list[JournalEntry]) -> None:
        """Forget envelopes the broker has confirmed."""
        if not entries:
            return
        with self._lock:
            with self._transaction() as db:
                before = db.total_changes
                db.executemany("DELETE FROM envelopes WHERE seq = ?", [(e.seq,) for e in entries])
                removed = db.total_changes - before
            if removed == len(entries):
                self._depth -= removed
                self._bytes -= sum(len(e.body) + ROW_OVERHEAD_BYTES for e in entries)
                self._oldest_at = self._first_written_at()
            else:
                self._recount()
            self._after_removal()

    def quarantine(self, entry: JournalEntry, reason: str) -> None:
        """Move an envelope that can never be published aside (kept on disk for the operator)."""
        with self._lock:
            self._quarantine(entry, reason)
        log.error("journaled envelope cannot be published (%s); moved to the journal's quarantine table "
                  "msgId=%s", reason, entry.msg_id)

    def _quarantine(self, entry: JournalEntry, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO quarantine (seq, msg_id, written_at, body, reason, quarantined_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (entry.seq, entry.msg_id, entry.written_at, entry.body, reason[:500], self._clock()),
            )
            db.execute("DELETE FROM envelopes WHERE seq = ?", (entry.seq,))
        self._recount()
        self._after_removal()

    # ---- internals -----------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("journal is not open")
        return self._db

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _first_written_at(self) -> float | None:
        with self._lock:
            row = self._conn().execute("SELECT written_at FROM envelopes ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def _after_removal(self) -> None:
        if self._depth == 0:
            with self._lock, contextlib.suppress(sqlite3.Error):
                # Give the space back: empty pages to the file system, the WAL truncated.
                self._conn().execute("PRAGMA incremental_vacuum")
                self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _recount(self) -> None:
        with self._lock:
            depth, size, oldest = self._conn().execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0), MIN(written_at) FROM envelopes"
            ).fetchone()
            self._depth = int(depth)
            self._bytes = int(size) + self._depth * ROW_OVERHEAD_BYTES
            self._oldest_at = None if oldest is None else float(oldest)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
