"""The journal keeps envelopes on disk in order, within its bound, for one listener at a time."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from ingest.journal import FILE_NAME, ROW_OVERHEAD_BYTES, Journal, JournalLocked


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _open(path, max_bytes: int = 1 << 20, clock=None) -> Journal:
    return Journal(path, max_bytes, clock=clock or Clock()).open()


def test_appended_envelopes_are_read_back_oldest_first_and_survive_a_reopen(tmp_path):
    journal = _open(tmp_path)
    assert journal.append([("a", b'{"msg_id":"a"}'), ("b", b'{"msg_id":"b"}')]) == 2
    assert journal.append([("c", b'{"msg_id":"c"}')]) == 1
    journal.close()
    again = _open(tmp_path)
    entries = again.read(0, 10)
    assert [e.msg_id for e in entries] == ["a", "b", "c"] and entries[0].body == b'{"msg_id":"a"}'
    assert [e.msg_id for e in again.read(entries[0].seq, 10)] == ["b", "c"]
    assert again.depth == 3
    again.close()


def test_the_journal_is_sqlite_in_wal_mode_with_full_sync(tmp_path):
    journal = _open(tmp_path)
    journal.append([("a", b"{}")])
    db = sqlite3.connect(tmp_path / FILE_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    journal.close()


@pytest.mark.integration  # starts a process
def test_a_commit_is_on_disk_when_append_returns(tmp_path):
    """A child process appends and dies by SIGKILL right after: the envelope is there."""
    script = (
        "import os, signal, sys; from ingest.journal import Journal\n"
        f"j = Journal({str(tmp_path)!r}, 1 << 20).open()\n"
        "assert j.append([('k', b'{\"msg_id\":\"k\"}')]) == 1\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True, timeout=30)
    assert proc.returncode == -9, proc.stderr
    journal = _open(tmp_path)
    assert [e.msg_id for e in journal.read(0, 10)] == ["k"]
    journal.close()


def test_removed_envelopes_are_gone_and_depth_bytes_and_age_follow(tmp_path):
    clock = Clock(1_000.0)
    journal = _open(tmp_path, clock=clock)
    assert (journal.depth, journal.size_bytes, journal.age_seconds()) == (0, 0, 0.0)
    journal.append([("a", b"x" * 10)])
    clock.now = 1_005.0
    journal.append([("b", b"y" * 20)])
    clock.now = 1_012.5
    assert journal.depth == 2 and journal.size_bytes == 30 + 2 * ROW_OVERHEAD_BYTES
    assert journal.age_seconds() == 12.5  # the oldest one decides
    first, second = journal.read(0, 10)
    journal.remove([first])
    assert journal.depth == 1 and journal.age_seconds() == 7.5
    journal.remove([second])
    assert (journal.depth, journal.size_bytes, journal.age_seconds()) == (0, 0, 0.0)
    journal.close()


def test_a_full_journal_takes_what_fits_from_the_front_and_more_once_drained(tmp_path):
    journal = _open(tmp_path, max_bytes=3 * (100 + ROW_OVERHEAD_BYTES))
    assert journal.append([(f"m{i}", b"x" * 100) for i in range(5)]) == 3  # oldest first, in order
    assert journal.append([("m3", b"x")]) == 0
    assert journal.depth == 3 and journal.full_for(0)  # not even an empty envelope fits
    journal.remove(journal.read(0, 1))
    assert not journal.full_for(100)
    assert journal.append([("m3", b"x" * 100), ("m4", b"x" * 100)]) == 1
    assert [e.msg_id for e in journal.read(0, 10)] == ["m1", "m2", "m3"]
    journal.close()


def test_a_msg_id_already_journaled_is_kept_once(tmp_path):
    journal = _open(tmp_path)
    journal.append([("same", b"1")])
    assert journal.append([("same", b"1"), ("other", b"2")]) == 2
    assert [e.msg_id for e in journal.read(0, 10)] == ["same", "other"]
    assert journal.depth == 2 and journal.size_bytes == 2 + 2 * ROW_OVERHEAD_BYTES
    journal.close()


def test_a_second_listener_cannot_open_the_same_journal(tmp_path):
    first = _open(tmp_path)
    with pytest.raises(JournalLocked, match="INGEST_JOURNAL_DIR"):
        _open(tmp_path)
    first.close()
    _open(tmp_path).close()  # free again once the first one is closed


def test_a_poison_row_is_moved_to_quarantine_not_lost(tmp_path, caplog):
    journal = _open(tmp_path)
    journal.append([("bad", b"not json"), ("good", b"{}")])
    bad = journal.read(0, 1)[0]
    journal.quarantine(bad, "not JSON")
    assert [e.msg_id for e in journal.read(0, 10)] == ["good"] and journal.depth == 1
    db = sqlite3.connect(tmp_path / FILE_NAME)
    assert db.execute("SELECT msg_id, body, reason FROM quarantine").fetchall() == [("bad", b"not json", "not JSON")]
    db.close()
    assert "msgId=bad" in caplog.text
    journal.close()


def test_counters_stay_exact_while_readers_append_and_the_hand_off_removes(tmp_path):
    import threading

    journal = _open(tmp_path, max_bytes=1 << 30)

    def reader(n: int) -> None:
        for i in range(150):
            journal.append([(f"r{n}-{i}", b"x" * 50)])

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    removed = 0
    while any(t.is_alive() for t in threads) or journal.depth:
        batch = journal.read(0, 20)
        journal.remove(batch)
        removed += len(batch)
    for thread in threads:
        thread.join()
    assert removed == 450
    assert (journal.depth, journal.size_bytes) == (0, 0)
    journal.close()
