"""Remote skills end to end with real processes: `python -m skills.serve` behind the adapter, retries on
5xx, a circuit breaker that opens and recovers, timeouts, refused tokens — the user always gets a sentence."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from skills.api import Reply, SkillError, Turn
from skills.remote.skill import RemoteSkill, RemoteSkillConfig, reset_breakers
from testkit.personas import alice
from testkit.processes import python_path
from testkit.services import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def spawn(argv: list[str], tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(tmp_path / f"server-{port}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, *argv, "--port", str(port)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": python_path(), **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + ("/health" if "skills.serve" in argv else "/count"), timeout=1)
            return proc, url + "/"
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError((tmp_path / f"server-{port}.log").read_text()) from None
            time.sleep(0.1)
    proc.kill()
    raise TimeoutError("the server did not come up")


@pytest.fixture
def servers(tmp_path) -> Iterator[Callable[..., str]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], **env: str) -> str:
        proc, url = spawn(argv, tmp_path, **env)
        started.append(proc)
        return url

    reset_breakers()
    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    reset_breakers()


def turn(text: str = "hello", msg_id: str = "m1") -> Turn:
    return alice.turn(text, msg_id=msg_id)


def adapter(url: str, **cfg) -> RemoteSkill:
    cfg.setdefault("allowlist", ("127.0.0.1",))  # the test servers are on loopback
    return RemoteSkill(RemoteSkillConfig(name=cfg.pop("name", "faulty"), url=url, **cfg))


def count(url: str) -> int:
    return httpx.get(url + "count").json()["count"]


def test_a_built_in_skill_served_over_http_answers_through_the_adapter(servers):
    url = servers(["-m", "skills.serve", "echo"], SKILL_SERVE_TOKEN="tok-1")
    remote = adapter(url, name="echo-remote", token="tok-1")
    assert remote.execute(turn("hello there")) == Reply(text="You said: hello there")
    assert remote.execute(turn("你好")).text == "你说：你好"
    health = httpx.get(url + "health").json()
    assert health == {"skill": "echo", "intents": ["echo"], "ok": True}


def test_a_wrong_token_is_refused_without_retries_and_the_user_gets_a_sentence(servers):
    url = servers(["-m", "skills.serve", "echo"], SKILL_SERVE_TOKEN="tok-1")
    with pytest.raises(SkillError) as caught:
        adapter(url, name="echo-remote", token="wrong").execute(turn("hello"))
    assert caught.value.user_message == "Sorry, the echo-remote service is unavailable right now; please try again later."


def test_a_skill_error_on_the_remote_side_shows_its_own_message(servers):
    url = servers(["-m", "skills.serve", "schedule"])  # no --store: every use of the store fails
    with pytest.raises(SkillError) as caught:
        adapter(url, name="schedule-remote").execute(turn("我明天有什么安排"))
    assert caught.value.user_message == "日程服务暂时不可用，请稍后再试。"


def test_a_served_skill_gets_its_store_and_config_from_the_command_line(servers, tmp_path):
    config = tmp_path / "schedule.json"
    config.write_text('{"default_timezone": "Europe/Berlin"}')
    url = servers(["-m", "skills.serve", "schedule", "--store", "tests.skills.schedule.reminder_store:MemoryReminderStore",
                   "--config", f"@{config}"])
    assert adapter(url, name="schedule-remote").execute(turn("我明天有什么安排")).text == "这段时间没有安排。"


def test_a_store_that_cannot_be_loaded_stops_the_server_at_start(tmp_path):
    with pytest.raises(RuntimeError, match=r"no\.such"):
        spawn(["-m", "skills.serve", "schedule", "--store", "no.such.module:Store"], tmp_path)


def test_a_remote_that_fails_is_retried_then_the_breaker_opens_and_recovers(servers):
    url = servers(["tests/skills/faulty_remote.py", "--mode", "500"])
    remote = adapter(url, retries=2, backoff_seconds=0.05, breaker_failures=2, breaker_reset_seconds=1.5)
    with pytest.raises(SkillError, match="failed"):
        remote.execute(turn("first"))
    assert count(url) == 3  # one call and two retries
    with pytest.raises(SkillError):
        remote.execute(turn("second"))  # the second failed call opens the circuit
    assert count(url) == 6
    started = time.monotonic()
    with pytest.raises(SkillError, match="circuit open") as caught:
        remote.execute(turn("third"))
    assert time.monotonic() - started < 0.1 and count(url) == 6  # the remote is not called at all
    assert "unavailable" in caught.value.user_message
    httpx.post(url + "mode", json={"mode": "ok"})
    time.sleep(1.6)  # cool-down over: half-open lets one trial call through
    assert remote.execute(turn("fourth")).text == "remote says: fourth"
    assert remote.execute(turn("fifth")).text == "remote says: fifth"


def test_a_slow_remote_times_out_into_an_apology_within_the_bound(servers):
    url = servers(["tests/skills/faulty_remote.py", "--mode", "slow", "--delay", "5"])
    remote = adapter(url, timeout_seconds=0.5, retries=1, backoff_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(SkillError) as caught:
        remote.execute(turn("你在吗"))
    elapsed = time.monotonic() - started
    assert elapsed < remote.timeout_seconds and elapsed < 2.5
    assert caught.value.user_message == "抱歉，「faulty」服务暂时不可用，请稍后再试。"
    assert count(url) == 2


def test_a_remote_that_is_not_running_gets_the_same_apology():
    remote = adapter(f"http://127.0.0.1:{free_port()}/", retries=1, backoff_seconds=0.01)
    with pytest.raises(SkillError, match="failed"):
        remote.execute(turn("hello"))
