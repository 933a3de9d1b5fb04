"""`make run` survives a dying role: bin/supervise starts it again, says so, and the bot answers everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from testkit import traffic
from testkit.ledger import Ledger
from testkit.services import free_port
from testkit.stack import ROOT, Stack, wait_until
from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow


class Supervised:
    """bin/supervise as a child process, its terminal output collected from a pipe."""

    def __init__(self, procfile: Path, workdir: Path, roles: list[str], env: dict[str, str]) -> None:
        self.conf = workdir / "supervisord.conf"
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bin" / "supervise"), "--procfile", str(procfile), "--dir", str(workdir),
             *roles],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def running(self, *roles: str) -> bool:
        out = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), "status",
                              *roles], capture_output=True, text=True, timeout=10).stdout
        return out.count(" RUNNING ") == len(roles)

    def pid(self, role: str) -> int:
        out = subprocess.run([sys.executable, "-m", "supervisor.supervisorctl", "-c", str(self.conf), "pid", role],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        return int(out) if out.isdigit() else 0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(150)
        finally:
            if self.proc.poll() is None:  # only our own process group (start_new_session)
                os.killpg(self.proc.pid, signal.SIGKILL)
            self._reader.join(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_role_is_restarted_with_a_log_line_and_a_metric_the_others_untouched(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# two roles that only live\n"
        "alpha: " + sys.executable + " -u -c \"import time; print('alpha up', flush=True); time.sleep(600)\"\n"
        "beta: sleep 600\n"
    )
    port = free_port()
    sup = Supervised(procfile, tmp_path / "sv", [], dict(os.environ, SUPERVISE_METRICS_PORT=str(port)))
    try:
        wait_until(lambda: sup.running("alpha", "beta"), 30, "both roles running")
        alpha, beta = sup.pid("alpha"), sup.pid("beta")
        wait_until(lambda: "alpha           | alpha up" in sup.output, 10, "alpha's output, prefixed")
        killed_at = time.monotonic()
        os.kill(alpha, signal.SIGKILL)
        wait_until(lambda: sup.pid("alpha") not in (0, alpha) and sup.running("alpha"), 30, "alpha restarted")
        restarted_after = time.monotonic() - killed_at
        assert sup.pid("beta") == beta  # a dying role no longer ends the others
        wait_until(lambda: "exited unexpectedly; starting it again (restart #1)" in sup.output, 10, "the line")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'role_restarts_total{role="alpha"} 1.0' in metrics
        print(f"\nrole restarted after {restarted_after:.1f}s")
        new_alpha = sup.pid("alpha")
    finally:
        code = sup.stop()
    assert code == 0
    assert not _alive(new_alpha) and not _alive(beta)  # SIGTERM to the supervisor stops every role
    assert "exited: alpha (terminated by SIGKILL; not expected)" in sup.output
    assert (tmp_path / "sv" / "alpha.log").read_text().count("alpha up") == 2


def test_killing_the_pipeline_worker_under_make_run_loses_no_message(stack: Stack):
    """The measurement of issue 12 (kill -9 of worker-pipeline under `make run`), with the
    Procfile's own commands under bin/supervise."""
    from webapp.models import MessageRecord

    stack.start_sandbox(ping_interval=5)
    client = sandbox_control(stack)
    env = stack.env(SUPERVISE_METRICS_PORT="0")
    sup = Supervised(ROOT / "Procfile", stack.log_dir / "sv", ["listener", "worker-pipeline", "worker-skills", "worker-skills-io"], env)
    try:
        client.wait_for_state(connections=1, timeout=60)
        ledger = Ledger()
        traffic.send(client, ledger, 20)
        traffic.wait_for_all(client, ledger, timeout=120, settle=0)  # every role is up
        traffic.send(client, ledger, 280, start=20)
        deadline = time.monotonic() + 60
        while len(ledger.sent) - len(ledger.check(client.replies()).lost) < 80:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        worker = sup.pid("worker-pipeline")
        killed_at = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: sup.pid("worker-pipeline") not in (0, worker), 60, "worker-pipeline started again")
        restarted_after = time.monotonic() - killed_at

        def unknown() -> set[str]:
            return set(MessageRecord.objects.filter(status="delivery_unknown").values_list("msg_id", flat=True))

        verdict = ledger.check(traffic.wait_for_all(client, ledger, timeout=180, excused=unknown))
        state = client.state()
        print(f"\ninjected={verdict.sent} acked={state['acked']} answered={verdict.sent - len(verdict.lost)} "
              f"duplicates={len(verdict.duplicates)} lost={len(verdict.lost)} "
              f"(delivery_unknown={len(unknown())}) restarted after {restarted_after:.1f}s")
        assert not verdict.duplicates and not verdict.misrouted, verdict.summary()
        # A reply whose HTTP call was cut by the kill is marked delivery_unknown, never sent twice.
        assert set(verdict.lost) <= unknown() and len(unknown()) <= 8, verdict.summary()
        assert state["acked"] == 300
    finally:
        code = sup.stop()
    assert code == 0, sup.output[-3000:]
    assert "worker-pipeline (pid" in sup.output and "exited unexpectedly" in sup.output
