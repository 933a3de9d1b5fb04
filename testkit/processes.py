"""Start and stop real Celery worker processes for tests and benchmarks (only the ones we start)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALL_QUEUES = ("dtbot.preprocess", "dtbot.skills", "dtbot.skills.io", "dtbot.postprocess", "dtbot.deliver",
              "dtbot.reminders")


class WorkerProcess(subprocess.Popen[bytes]):
    """A Popen that also knows the worker's node name and log file."""

    node_name: str
    log_path: Path
    owns_log: bool

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def python_path(inherited: str | None = None) -> str:
    """PYTHONPATH for a child process: the repository first, then what this process inherited
    (bin/test-clock's shifted clock travels that way)."""
    inherited = os.environ.get("PYTHONPATH", "") if inherited is None else inherited
    return os.pathsep.join([str(ROOT), *filter(None, inherited.split(os.pathsep))])


def worker_env(base: dict[str, str] | None = None, **overrides: str) -> dict[str, str]:
    """The current environment plus test overrides (CELERY_BROKER_URL, DATABASE_URL, ...)."""
    env = dict(os.environ if base is None else base)
    env.update(overrides)
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    # Many test workers run at once: none takes the fixed metrics port unless a test gives it one.
    env.setdefault("WORKER_METRICS_PORT", "0")
    env["PYTHONPATH"] = python_path(env.get("PYTHONPATH", ""))
    # The parent test process may run under pytest-django; workers read only the env.
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def start_worker(
    env: dict[str, str],
    queues: tuple[str, ...] | list[str] = ALL_QUEUES,
    pool: str = "threads",
    concurrency: int = 4,
    name: str | None = None,
    log_path: Path | None = None,
    loglevel: str = "INFO",
    ready_timeout: float = 60.0,
    extra_args: tuple[str, ...] = (),
    app: str = "workers.celery",
) -> WorkerProcess:
    """Start `celery -A <app> worker` and wait until it consumes; raises with its log if
    it dies or is not ready in time."""
    node = name or f"test-{uuid.uuid4().hex[:8]}@%h"
    owns_log = log_path is None
    if log_path is None:
        fd, raw = tempfile.mkstemp(prefix="dtbot-worker-", suffix=".log")
        os.close(fd)
        log_path = Path(raw)
    ready_file = Path(str(log_path) + ".ready")
    ready_file.unlink(missing_ok=True)
    env = dict(env, WORKER_READY_FILE=str(ready_file))
    cmd = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "-n", node, "-Q", ",".join(queues), "-P", pool, "-c", str(concurrency),
        "-l", loglevel, "--without-gossip", "--without-mingle", *extra_args,
    ]
    with log_path.open("wb") as log_file:  # the worker writes through its own copy of the descriptor
        proc = WorkerProcess(
            cmd, cwd=str(ROOT), env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() can reach pool children
        )
    proc.node_name = node
    proc.log_path = log_path
    proc.owns_log = owns_log
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{proc.log_text()[-4000:]}")
        if ready_file.exists():  # written on Celery's worker_ready signal, at any log level
            return proc
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"worker not ready after {ready_timeout} s:\n{proc.log_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
    """Warm shutdown (SIGTERM), then SIGKILL of the worker's own process group; a log file
    that start_worker created itself is removed (pass log_path to keep one)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill(proc)
    _kill_group(proc)
    log_path = getattr(proc, "log_path", None)
    if log_path is not None:
        Path(str(log_path) + ".ready").unlink(missing_ok=True)
        if getattr(proc, "owns_log", False):
            log_path.unlink(missing_ok=True)
    return proc.returncode


def kill(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 the worker and its pool children (a crash, for fault tests)."""
    _kill_group(proc)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The group id is the worker's pid (start_new_session): only processes we started.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
