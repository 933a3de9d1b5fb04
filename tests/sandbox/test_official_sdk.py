"""The official Python SDK (dingtalk-stream 0.24.3) works against the sandbox: proof that the sandbox
speaks the protocol real clients expect (registration, pushes, ACKs, ping echo, webhook replies)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.personas import alice, bob

BOT = Path(__file__).with_name("sdk_echo_bot.py")


@pytest.fixture
def sdk_bot(server, control):
    control.configure(ping_interval=0.3)
    env = {**os.environ, "DINGTALK_OPENAPI_ENDPOINT": server.base_url}
    proc = subprocess.Popen(
        [sys.executable, str(BOT), "sandbox-client-id", "sandbox-client-secret"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not control.connections():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the SDK did not connect"
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_the_official_sdk_receives_acks_echoes_pings_and_replies(server, control, sdk_bot):
    [conn] = control.connections()
    assert conn["ua"].startswith("dingtalk-sdk-python/")
    private = alice.send(control, "hello sdk")
    group = bob.send(control, "hi group", conversation_type="2")
    replies = control.wait_for_replies(2, timeout=10)
    by_msg = {r["msg_id"]: r["text"] for r in replies}
    assert by_msg == {private["msgId"]: "echo: hello sdk", group["msgId"]: "echo: hi group"}
    state = control.wait_for_state(acked=2, pongs_received=1, timeout=5)
    assert state["unacked"] == 0 and state["bad_frames"] == 0
    assert all(p["echo_ok"] for p in control.pings() if p["echoed"])


@pytest.mark.slow
def test_the_official_sdk_reconnects_after_a_disconnect(server, control, sdk_bot):
    control.fault("disconnect", grace=0.5)
    control.wait_for_state(registrations=2, timeout=10)
    sent = control.send_message("still there?")
    [reply] = control.wait_for_replies(1, timeout=10, msg_id=sent["msgId"])
    assert reply["text"] == "echo: still there?"
