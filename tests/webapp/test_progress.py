"""Long commands show progress: a bar with counts and ETA on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from testkit.processes import ROOT, worker_env
from webapp.management.progress import LineBar, TerminalBar, progress
from webapp.models import DeadLetter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_it_writes_a_line_at_start_then_at_most_every_interval_and_at_the_end():
    out, clock = io.StringIO(), Clock()
    bar = LineBar("embedding", 1000, out, every=3, clock=clock)
    for _ in range(10):  # 100 items per second for 10 seconds
        clock.now += 1
        bar.advance(100)
        if bar.done == 200:
            bar.note("second model")
    bar.close()
    assert out.getvalue().splitlines() == [
        "embedding: 0/1000 (0%), 0.0/s, ETA ?",
        "embedding: second model",
        "embedding: 300/1000 (30%), 100.0/s, ETA 7s",
        "embedding: 600/1000 (60%), 100.0/s, ETA 4s",
        "embedding: 900/1000 (90%), 100.0/s, ETA 1s",
        "embedding: done, 1000/1000 in 10s",
    ]


def test_a_total_found_on_the_way_and_a_long_eta_read_well():
    out, clock = io.StringIO(), Clock()
    bar = LineBar("replaying", None, out, every=0, clock=clock)
    bar.callback(0, 40_000)
    clock.now += 10
    bar.callback(100, 0)
    assert out.getvalue().splitlines()[-1] == "replaying: 100/40000 (0%), 10.0/s, ETA 1h06m30s"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_it_draws_a_bar_with_counts_and_eta():
    screen = Terminal()
    with progress("ingesting", total=4, stream=screen) as bar:
        assert isinstance(bar, TerminalBar)
        for _ in range(3):
            bar.advance()
            time.sleep(0.3)  # rich redraws 4 times a second; the bar must show the counts as they move
    drawn = screen.getvalue()
    assert "\x1b[" in drawn and "━" in drawn  # ANSI codes, a bar
    assert "3/4" in drawn and "ETA" in drawn and "ingesting" in drawn


def test_the_choice_follows_the_stream_unless_forced():
    with progress("x", 1, stream=io.StringIO()) as plain:
        assert isinstance(plain, LineBar)
    with progress("x", 1, stream=io.StringIO(), terminal=True) as drawn:
        assert isinstance(drawn, TerminalBar)


@pytest.mark.django_db
def test_replay_dead_letters_all_shows_progress_on_stderr_and_keeps_stdout_for_results():
    for n in range(3):
        DeadLetter.objects.create(msg_id=f"m{n}", stage="deliver", payload={}, error="x")
    out, err = io.StringIO(), io.StringIO()
    call_command("replay_dead_letters", "--all", "--dry-run", stdout=out, stderr=err)
    assert err.getvalue().splitlines()[0] == "replaying dead letters: 0/3 (0%), 0.0/s, ETA ?"
    assert err.getvalue().splitlines()[-1].startswith("replaying dead letters: done, 3/3 in ")
    assert out.getvalue().count("would replay #") == 3 and "replaying" not in out.getvalue()


@pytest.mark.django_db
def test_export_user_counts_its_stores(personal_data_stores, tmp_path):
    err = io.StringIO()
    call_command("export_user", "alice", "--output", str(tmp_path / "a.json"), stdout=io.StringIO(), stderr=err)
    last = [line for line in err.getvalue().splitlines() if line.startswith("exporting the stores")][-1]
    done, total = last.split("done, ")[1].split(" in ")[0].split("/")
    assert done == total and int(total) >= 2  # the database, then every registered store


@pytest.mark.slow
def test_a_real_terminal_gets_the_bar_and_a_pipe_gets_lines(transactional_db, tmp_path):
    from tests.support.stack_fixtures import _database_url

    for n in range(5):
        DeadLetter.objects.create(msg_id=f"m{n}", stage="deliver", payload={}, error="x")
    argv = [sys.executable, "manage.py", "replay_dead_letters", "--all", "--dry-run"]
    env = worker_env(DATABASE_URL=_database_url(), COLUMNS="100", TERM="xterm")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        screen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            try:
                chunk = os.read(master, 4096) if ready else b""
            except OSError:  # the child closed its end
                chunk = b""
            if not chunk:
                break
            screen += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    drawn = screen.decode("utf-8", "replace")
    assert "━" in drawn and "5/5" in drawn and "ETA" in drawn and "\x1b[" in drawn

    piped = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0 and "\x1b[" not in piped.stderr
    assert piped.stderr.splitlines()[-1].startswith("replaying dead letters: done, 5/5 in ")
