"""Worker readiness: the consumer bootstep's heartbeat file and `python -m workers.health`, the compose check."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from testkit import processes, services
from testkit.tcpproxy import tcp_proxy
from testkit.waits import wait_for
from workers.health import heartbeat_age, main


def test_a_fresh_heartbeat_is_ready(tmp_path, capsys):
    beat = tmp_path / "hb"
    beat.touch()
    assert main(["--file", str(beat), "--max-age", "30"]) == 0
    assert capsys.readouterr().out.startswith("ready")


def test_a_stale_or_missing_heartbeat_is_not_ready(tmp_path, capsys):
    beat = tmp_path / "hb"
    assert main(["--file", str(beat), "--max-age", "30"]) == 1
    assert "no heartbeat" in capsys.readouterr().err
    beat.touch()
    old = beat.stat().st_mtime - 31
    os.utime(beat, (old, old))
    assert main(["--file", str(beat), "--max-age", "30"]) == 1
    assert "old" in capsys.readouterr().err
    assert heartbeat_age(beat, now=old + 5) == pytest.approx(5)


def test_no_heartbeat_file_configured_is_not_ready(capsys):
    assert main(["--file", ""]) == 1
    assert "WORKER_HEARTBEAT_FILE" in capsys.readouterr().err


def _check(beat, max_age: float = 3.0) -> int:
    # The command compose runs, as its own process.
    return subprocess.run(
        [sys.executable, "-m", "workers.health", "--file", str(beat), "--max-age", str(max_age)],
        cwd=processes.ROOT, env=processes.worker_env(dict(os.environ)), capture_output=True, timeout=30,
    ).returncode


@pytest.mark.slow
@pytest.mark.integration
def test_a_worker_is_ready_only_while_it_is_connected_to_the_broker(tmp_path, redis_prefix):
    beat = tmp_path / "worker.heartbeat"
    with services.rabbit_vhost("dtbot-health") as url, tcp_proxy() as proxy:
        env = processes.worker_env(dict(
            os.environ, CELERY_BROKER_URL=proxy.url_for(url), REDIS_KEY_PREFIX=redis_prefix,
            WORKER_HEARTBEAT_FILE=str(beat), WORKER_HEARTBEAT_SECONDS="0.5",
        ))
        worker = processes.start_worker(env, ["dtbot.health-test"], concurrency=1)
        try:
            wait_for(lambda: _check(beat) == 0, 20, "a ready worker")
            first = beat.stat().st_mtime
            wait_for(lambda: beat.exists() and beat.stat().st_mtime > first, 10, "the heartbeat to be touched again")
            proxy.cut()  # the broker is gone for this worker (the shared RabbitMQ keeps running)
            wait_for(lambda: _check(beat) == 1, 30, "the worker to say it is not ready")
            assert worker.poll() is None  # still running: the orchestrator waits instead of restarting at once
            proxy.restore()
            wait_for(lambda: _check(beat) == 0, 60, "the worker ready again after reconnecting")
        finally:
            processes.stop(worker)
    assert not beat.exists()  # a stopped worker is not ready


def test_beat_touches_its_heartbeat_from_a_thread(tmp_path, monkeypatch):
    import threading

    from conf.settings import get_settings
    from workers.health import start_beat_heartbeat

    beat = tmp_path / "run" / "beat.heartbeat"
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", str(beat))
    monkeypatch.setenv("WORKER_HEARTBEAT_SECONDS", "0.05")
    get_settings.cache_clear()
    stop = threading.Event()
    try:
        thread = start_beat_heartbeat(stop)
        wait_for(beat.exists, 5, "the first touch")
        os.utime(beat, (0, 0))
        wait_for(lambda: beat.stat().st_mtime > 0, 5, "a later touch")
        assert main(["--file", str(beat), "--max-age", "30"]) == 0
    finally:
        stop.set()
        get_settings.cache_clear()
    thread.join(5)
    assert not thread.is_alive()
    monkeypatch.setenv("WORKER_HEARTBEAT_FILE", "")
    get_settings.cache_clear()
    assert start_beat_heartbeat(stop) is None
    get_settings.cache_clear()
