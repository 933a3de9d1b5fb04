"""A real Alertmanager (Debian's, bin/ensure-promtool) with the shipped configuration: an alert posted to
it reaches the ops group's sandbox robot through the web role's bridge, and one the robot could not take
(DingTalk busy) is retried by Alertmanager until it arrives."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from testkit.services import free_port
from testkit.waits import wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docker" / "alertmanager" / "alertmanager.yml"
TOKEN = "alertmanager-token-for-tests"
SECRET = "SECalertmanager-test-secret"


@pytest.mark.integration
def test_the_shipped_config_passes_amtool():
    amtool = shutil.which("amtool")
    assert amtool, "amtool is missing: run bin/ensure-promtool (make test does)"
    result = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def alertmanager(tmp_path, live_server, resources, sandbox_client):
    """Alertmanager with the shipped config, its receiver pointed at this test's web server; the bridge
    posts to a signed sandbox robot. Yields (Alertmanager's URL, the robot)."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "alertmanager is missing: run bin/ensure-promtool (make test does)"
    robot = sandbox_client.add_robot(secret=SECRET)
    resources.set(ALERT_WEBHOOK_TOKEN=TOKEN, OPS_DINGTALK_ROBOT_WEBHOOK=robot["webhook"],
                  OPS_DINGTALK_ROBOT_SECRET=SECRET)
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    token = tmp_path / "alert_webhook_token"
    token.write_text(TOKEN)
    hook = config["receivers"][0]["webhook_configs"][0]
    hook["url"] = f"{live_server.url}/ops/alerts"
    hook["http_config"]["authorization"]["credentials_file"] = str(token)
    config["route"].update(group_wait="0s", group_interval="1s")  # the test should not wait 30 s
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={path}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), timeout=20, what="alertmanager ready", interval=0.1)
        yield url, robot
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def fire(url: str, alertname: str, **labels: str) -> None:
    alert = {"labels": {"alertname": alertname, "severity": "page", **labels},
             "annotations": {"summary": f"{alertname} on {labels.get('instance', '?')}"}}
    response = httpx.post(f"{url}/api/v2/alerts", json=[alert], timeout=5)
    assert response.status_code == 200, response.text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_alerts_reach_the_ops_group_and_a_busy_robot_is_retried(alertmanager, sandbox_client):
    url, robot = alertmanager

    def robot_titles() -> list[str]:
        return [r["title"] for r in sandbox_client.replies(via="robot") if r["robot"] == robot["access_token"]]

    fire(url, "ListenerDisconnected", instance="listener:9108")
    assert wait_for(robot_titles, timeout=20, what="the first alert in the ops group", interval=0.1) == [
        "[FIRING:1] ListenerDisconnected"]
    [message] = sandbox_client.replies(via="robot")
    assert "**ListenerDisconnected** ListenerDisconnected on listener:9108" in message["text"]

    sandbox_client.fault("fail_sends")  # DingTalk busy: the bridge answers 503, Alertmanager retries
    fire(url, "QueueBacklogGrowing", queue="dtbot.skills")
    time.sleep(2.0)  # several attempts fail meanwhile
    assert "[FIRING:1] QueueBacklogGrowing" not in robot_titles()
    sandbox_client.fault("heal_sends")
    wait_for(lambda: "[FIRING:1] QueueBacklogGrowing" in robot_titles(), timeout=30,
             what="the retried alert in the ops group", interval=0.2)
