"""The sandbox behaves as DingTalk really does: re-push policy, zombie and stale sockets, late ACKs."""

from __future__ import annotations

import json

import pytest
import websocket

from sandbox import SandboxConfig
from sandbox.client import SandboxError
from testkit.waits import wait_for
from tests.sandbox.stream import BOT_TOPIC


def _silent(client, topic: str, seconds: float) -> bool:
    """True when no frame of `topic` arrives within `seconds`."""
    try:
        client.recv_topic(topic, timeout=seconds)
    except websocket.WebSocketTimeoutException:
        return True
    return False


def test_by_default_robot_messages_are_fire_and_forget_but_events_come_again(server, control, stream):
    assert control.config()["redelivery"] == "events"  # the Stream FAQ's behaviour
    control.configure(redeliver_after=0.1, redeliver_jitter=0)
    client = stream()
    control.send_message("never acked")
    client.recv_topic(BOT_TOPIC)
    assert _silent(client, BOT_TOPIC, 0.5)
    control.push("*", {"k": 1}, frame_type="EVENT", headers={"eventType": "user_add_org"})
    first = client.recv_topic("*")
    again = client.recv_topic("*", timeout=2)
    assert again["headers"]["messageId"] == first["headers"]["messageId"]
    state = control.state()
    assert state["redelivered"] == 1 and state["unacked"] == 2


def test_with_redelivery_off_nothing_comes_again(server, control, stream):
    control.configure(redelivery="off", redeliver_after=0.1, redeliver_jitter=0)
    client = stream()
    control.push("*", {"k": 1}, frame_type="EVENT")
    client.recv_topic("*")
    assert _silent(client, "*", 0.5)
    assert control.state()["redelivered"] == 0


def test_the_default_re_push_delay_is_16_to_60_seconds():
    config = SandboxConfig()
    assert config.redeliver_after == 16.0
    assert config.redeliver_after + config.redeliver_jitter == 60.0
    assert config.ping_interval == 30.0 and config.disconnect_grace == 10.0


def test_re_pushes_are_spread_at_random_within_the_window(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.2, redeliver_jitter=0.6)
    stream()
    control.send_batch([{"text": f"m{i}"} for i in range(20)])
    pushes = wait_for(lambda: (ps := control.pushes()) and all(p["count"] >= 2 for p in ps) and ps)
    gaps = [p["pushedAt"][1] - p["pushedAt"][0] for p in pushes]
    assert all(0.15 <= gap <= 1.0 for gap in gaps), gaps
    assert max(gaps) - min(gaps) > 0.05  # not one fixed delay


def test_an_unknown_redelivery_mode_is_refused(server, control):
    with pytest.raises(SandboxError, match="redelivery"):
        control.configure(redelivery="sometimes")


def test_a_zombie_answers_websocket_pings_but_gets_no_pushes_and_no_system_pings(server, control, stream):
    control.configure(ping_interval=0.1)
    client = stream()
    client.recv_topic("ping")
    assert control.fault("zombie")["affected"] == 1
    sent = control.send_message("while the socket is a zombie")
    client.ws.ping(b"still there?")
    opcode, frame = client.ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"still there?"
    assert _silent(client, "ping", 0.5) and control.state()["queued"] == 1
    fresh = stream()  # a new connection gets what waited
    assert fresh.recv_topic(BOT_TOPIC)["headers"]["messageId"] == sent["messageId"]
    assert control.connections()[0]["zombie"] is True


def test_a_stale_socket_among_several_swallows_its_share(server, control, stream):
    live, stale = stream(), stream()
    stale_id = control.connections()[1]["id"]  # connections are listed in the order they opened
    control.fault("freeze", connection_id=stale_id)
    control.send_batch([{"text": f"m{i}"} for i in range(40)])
    got = 0
    try:
        while True:
            live.recv_topic(BOT_TOPIC, timeout=0.3)
            got += 1
    except websocket.WebSocketTimeoutException:
        pass
    swallowed = sum(1 for p in control.pushes() if p["connectionIds"] == [stale_id])
    assert swallowed >= 5 and got == 40 - swallowed  # the server still picks it at random
    assert _silent(stale, BOT_TOPIC, 0.2)


def test_freeze_and_zombie_can_target_one_connection(server, control, stream):
    stream(), stream()
    first, second = (c["id"] for c in control.connections())
    assert control.fault("zombie", connection_id=second)["affected"] == 1
    flags = {c["id"]: c["zombie"] for c in control.connections()}
    assert flags == {first: False, second: True}
    with pytest.raises(SandboxError, match="connection_id"):
        control.fault("freeze", connection_id=7)
    control.fault("revive")
    assert not any(c["zombie"] for c in control.connections())


def test_a_late_ack_arrives_after_the_re_push(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.2, redeliver_jitter=0, ack_delay=0.6)
    client = stream()
    sent = control.send_message("slow network")
    first = client.recv_topic(BOT_TOPIC)
    client.ack(first)  # answered at once, but heard 0.6 s later
    again = client.recv_topic(BOT_TOPIC, timeout=2)
    assert again["headers"]["messageId"] == sent["messageId"]
    assert json.loads(again["data"])["msgId"] == sent["msgId"]
    push = wait_for(lambda: next((p for p in control.pushes() if p["acked"]), None))
    assert push["count"] >= 2 and push["ackedAt"] - push["pushedAt"][0] >= 0.55
