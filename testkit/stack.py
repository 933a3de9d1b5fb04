"""A whole bot on one machine: sandbox, listener and Celery workers as real processes, by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from testkit import processes
from testkit.services import free_port
from testkit.waits import wait_for

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"

PIPELINE_QUEUES = "dtbot.preprocess,dtbot.postprocess,dtbot.deliver,dtbot.reminders"
# The Procfile's layout: skills that compute on a prefork pool, skills that wait on a threads pool.
SKILLS_CPU_QUEUES = "dtbot.skills"
SKILLS_IO_QUEUES = "dtbot.skills.io"
# One skills worker serving both kinds (what a test that runs a single skills worker starts).
SKILL_QUEUES = f"{SKILLS_CPU_QUEUES},{SKILLS_IO_QUEUES}"


@dataclass
class Proc:
    """A process this stack started: its role, Popen and log file."""

    role: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children (prefork pools)."""
        try:
            proc = psutil.Process(self.pid)
            total = sum(proc.cpu_times()[:2])
            for child in proc.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.Error:
                    pass
            return total
        except psutil.Error:
            return 0.0


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until true; raise TimeoutError naming `what`."""
    wait_for(check, timeout, what, interval)


class Stack:
    """Starts and stops the bot's processes against isolated stores; kills only its own pids."""

    def __init__(
        self,
        *,
        broker_url: str,
        database_url: str,
        redis_prefix: str,
        log_dir: Path,
        redis_url: str = "redis://127.0.0.1:6379/0",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.database_url = database_url
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(extra_env or {})
        self.sandbox_url = ""
        self.procs: list[Proc] = []
        self._lock = threading.Lock()

    # -- environment -----------------------------------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        """The environment every role of this stack runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DINGTALK_", "CELERY_"))}
        env.update(
            {
                "PYTHONPATH": processes.python_path(),
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "webapp.settings",
                "CELERY_BROKER_URL": self.broker_url,
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "REDIS_KEY_PREFIX": self.redis_prefix,
                "DINGTALK_CLIENT_ID": SANDBOX_CLIENT_ID,
                "DINGTALK_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
                "DINGTALK_OPENAPI_ENDPOINT": self.sandbox_url,
                "INGEST_METRICS_PORT": "0",
                # The listener's journal lives with the stack's logs: a listener restarted in the
                # same stack replays it; a second listener running at once needs its own directory.
                "INGEST_JOURNAL_DIR": str(self.log_dir / "ingest-journal"),
                "OMP_NUM_THREADS": "2",
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_WAIT_POLICY": "PASSIVE",
                "HF_HUB_OFFLINE": "1",
                # The sandbox sets no QPS limit unless a test asks for one, and the reply budget
                # (20/s in production) would otherwise pace every volume test; tests of the budget
                # set their own.
                "DINGTALK_QPS_WEBHOOK": "500",
                "DINGTALK_QPS_ROBOT_SEND": "500",
            }
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def _spawn(self, role: str, argv: list[str], env: dict[str, str]) -> Proc:
        log_path = self.log_dir / f"{role}-{len(self.procs)}.log"
        with log_path.open("ab") as log_file:  # the process writes through its own copy of the descriptor
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(role=role, popen=popen, log_path=log_path)
        with self._lock:
            self.procs.append(proc)
        return proc

    # -- roles -----------------------------------------------------------------------------
    def start_sandbox(
        self,
        *,
        redeliver_after: float = 60.0,
        ping_interval: float = 20.0,
        redelivery: str = "events",
        redeliver_jitter: float = 0.0,
    ) -> Proc:
        """The sandbox as DingTalk's FAQ describes it unless asked otherwise: robot messages are
        pushed once (`redelivery="all"` re-pushes un-ACKed ones after `redeliver_after` s)."""
        port = free_port()
        proc = self._spawn(
            "sandbox",
            [
                PYTHON, "-m", "sandbox", "--port", str(port),
                "--client-id", SANDBOX_CLIENT_ID, "--client-secret", SANDBOX_CLIENT_SECRET,
                "--redeliver-after", str(redeliver_after), "--ping-interval", str(ping_interval),
                "--redelivery", redelivery, "--redeliver-jitter", str(redeliver_jitter),
            ],
            self.env(),
        )
        self.sandbox_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: "listening on" in proc.log_text() or not proc.alive(), 30, "the sandbox")
        if not proc.alive():
            raise RuntimeError(f"sandbox exited:\n{proc.log_text()[-3000:]}")
        return proc

    def start_listener(self, **env: str) -> Proc:
        if not self.sandbox_url:
            raise RuntimeError("start the sandbox first")
        return self._spawn("listener", [PYTHON, "-m", "ingest"], self.env(**env))

    def start_web(self, port: int | None = None, **env: str) -> tuple[Proc, str]:
        """gunicorn with the web role's configuration (one worker); returns it and its base URL."""
        port = port or free_port()
        proc = self._spawn(
            "web",
            [PYTHON, "-m", "gunicorn", "-c", "python:webapp.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "webapp.wsgi"],
            self.env(**env),
        )
        return proc, f"http://127.0.0.1:{port}"

    def start_worker(
        self,
        role: str,
        queues: str,
        *,
        pool: str = "threads",
        concurrency: int = 4,
        app: str = "workers.celery",
        **env: str,
    ) -> Proc:
        """A Celery worker of this stack, returned once it consumes (see testkit.processes)."""
        log_path = self.log_dir / f"{role}-{len(self.procs)}.log"
        popen = processes.start_worker(
            self.env(**env), queues.split(","), pool=pool, concurrency=concurrency,
            name=f"{role}-{len(self.procs)}@%h", log_path=log_path, app=app,
            loglevel=env.get("LOG_LEVEL", "INFO"), ready_timeout=90,
            # Heartbeats stay on, as in production: their 2 s timer is what wakes the event loop
            # to notice SIGTERM (without any timer a warm shutdown waited ~9 s in epoll).
        )
        proc = Proc(role=role, popen=popen, log_path=log_path)
        with self._lock:
            self.procs.append(proc)
        return proc

    def start_beat(self, app: str = "workers.celery", **env: str) -> Proc:
        """Celery beat (the reminder sweep's clock), its schedule file in the log directory."""
        schedule = self.log_dir / f"celerybeat-schedule-{len(self.procs)}"
        proc = self._spawn(
            "beat",
            [PYTHON, "-m", "celery", "-A", app, "beat", "-l", "INFO", "--schedule", str(schedule)],
            self.env(**env),
        )
        wait_until(lambda: "beat: Starting" in proc.log_text() or not proc.alive(), 30, "celery beat")
        if not proc.alive():
            raise RuntimeError(f"beat exited:\n{proc.log_text()[-3000:]}")
        return proc

    def start_pipeline_worker(self, concurrency: int = 8, app: str = "workers.celery", **env: str) -> Proc:
        return self.start_worker("worker-pipeline", PIPELINE_QUEUES, pool="threads", concurrency=concurrency,
                                 app=app, **env)

    def start_skills_worker(
        self, concurrency: int = 2, pool: str = "prefork", app: str = "workers.celery",
        queues: str = SKILL_QUEUES, **env: str,
    ) -> Proc:
        """The skills worker; by default it serves both skill queues (pass SKILLS_CPU_QUEUES and start
        `start_skills_io_worker` too for the Procfile's split)."""
        return self.start_worker("worker-skills", queues, pool=pool, concurrency=concurrency,
                                 app=app, **env)

    def start_skills_io_worker(
        self, concurrency: int = 64, pool: str = "threads", app: str = "workers.celery", **env: str
    ) -> Proc:
        """The Procfile's `worker-skills-io`: the skills that wait (LLM streams, remote skills)."""
        return self.start_worker("worker-skills-io", SKILLS_IO_QUEUES, pool=pool, concurrency=concurrency,
                                 app=app, **env)

    def start_procfile_workers(self, app: str = "workers.celery", **env: str) -> list[Proc]:
        """The three worker roles as the Procfile starts them (pools and concurrency)."""
        return [
            self.start_pipeline_worker(concurrency=8, app=app, **env),
            self.start_skills_worker(concurrency=2, pool="prefork", app=app, queues=SKILLS_CPU_QUEUES, **env),
            self.start_skills_io_worker(concurrency=64, pool="threads", app=app, **env),
        ]

    # -- control ---------------------------------------------------------------------------
    def kill(self, proc: Proc, sig: int = signal.SIGKILL) -> None:
        """Signal one of our own processes (and its process group: prefork children)."""
        if proc.alive():
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        if sig in (signal.SIGKILL, signal.SIGTERM):
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=10)

    def stop(self) -> None:
        """Terminate every process this stack started, gently then firmly."""
        for proc in reversed(self.procs):
            if proc.alive():
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 15
        for proc in self.procs:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.popen.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.popen.wait(timeout=10)

    def logs(self, role: str | None = None) -> str:
        return "\n".join(
            f"----- {p.role} (pid {p.pid}) -----\n{p.log_text()[-4000:]}"
            for p in self.procs
            if role is None or p.role == role
        )
