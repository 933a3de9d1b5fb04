"""SYSTEM ping/disconnect, socket faults, raw frames and bookkeeping of the sandbox gateway."""

from __future__ import annotations

import json

import pytest
import websocket

from sandbox.client import SandboxError
from testkit.waits import wait_for
from tests.sandbox.stream import BOT_TOPIC


def _echoed(control) -> list:
    """The recorded pings once one of them was echoed (the gateway reads frames on its own thread)."""
    pings = control.pings()
    return pings if any(p["echoed"] for p in pings) else []


def test_system_pings_arrive_and_their_echo_is_recorded(server, control, stream):
    control.configure(ping_interval=0.1)
    client = stream()
    ping = client.recv_topic("ping")
    assert ping["type"] == "SYSTEM"
    assert set(json.loads(ping["data"])) == {"opaque"}
    client.echo_ping(ping)
    control.configure(ping_interval=0)
    recorded = {p["messageId"]: p for p in wait_for(lambda: _echoed(control), what="the echo")}
    assert recorded[ping["headers"]["messageId"]]["echoed"] is True
    assert recorded[ping["headers"]["messageId"]]["echo_ok"] is True
    state = control.state()
    assert state["pings_sent"] >= 1 and state["pongs_received"] == 1
    assert control.acks() == []  # ping echoes are not business ACKs


def test_a_ping_echo_with_the_wrong_opaque_is_recorded_as_not_ok(server, control, stream):
    control.configure(ping_interval=0.1)
    client = stream()
    ping = client.recv_topic("ping")
    control.configure(ping_interval=0)
    client.ack(ping, json.dumps({"opaque": "something else"}))
    recorded = {p["messageId"]: p for p in wait_for(lambda: _echoed(control))}[ping["headers"]["messageId"]]
    assert recorded["echoed"] is True and recorded["echo_ok"] is False


def test_websocket_pings_are_answered_with_pongs(server, stream):
    client = stream()
    client.ws.ping(b"are you there")
    opcode, frame = client.ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"are you there"


def test_disconnect_is_announced_then_the_socket_closes_and_pushes_move_on(server, control, stream):
    old = stream()
    assert control.fault("disconnect", grace=0.3)["affected"] == 1
    frame = old.recv()
    assert frame["type"] == "SYSTEM" and frame["headers"]["topic"] == "disconnect"
    assert json.loads(frame["data"]) == {"reason": "persistent connection is timeout"}
    old.ack(frame)  # GO/PY ACK it anyway; the sandbox records it as a system ACK
    sent = control.send_message("after disconnect")  # must not go to the old socket
    opcode, _ = old.ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    new = stream()
    assert new.recv_topic(BOT_TOPIC)["headers"]["messageId"] == sent["messageId"]
    assert [a["kind"] for a in control.acks()] == ["disconnect"]


def test_drop_socket_cuts_tcp_without_a_close_frame(server, control, stream):
    client = stream()
    assert control.fault("drop_socket")["affected"] == 1
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        client.ws.recv_data(control_frame=True)
    wait_for(lambda: control.state()["connections"] == 0, what="the sandbox to drop the connection")


def test_a_frozen_connection_is_a_silent_zombie_until_unfrozen(server, control, stream):
    control.configure(redelivery="all", redeliver_after=0.3, redeliver_jitter=0)
    client = stream()
    control.fault("freeze")
    sent = control.send_message("into the void")
    client.ws.ping(b"hello?")
    with pytest.raises(websocket.WebSocketTimeoutException):
        client.ws.settimeout(0.2)
        client.ws.recv_data(control_frame=True)  # neither the push nor a pong arrives
    assert control.state()["connections"] == 1  # TCP stays up
    control.fault("unfreeze")
    frame = client.recv_topic(BOT_TOPIC, timeout=2)  # the redelivery gets through now
    assert frame["headers"]["messageId"] == sent["messageId"]


@pytest.mark.parametrize(("fault", "restore"), [("freeze", "unfreeze"), ("zombie", "revive")])
def test_acks_on_a_silenced_connection_are_not_heard(server, control, stream, fault, restore):
    """A frozen socket and a zombie (pongs still flowing) both drop what the client sends."""
    client = stream()
    control.send_message("x")
    frame = client.recv_topic(BOT_TOPIC)
    control.fault(fault)
    client.ack(frame)
    control.fault(restore)
    # Frames are read in order: once the marker sent after it is heard, the ACK was read and dropped.
    client.ack({"headers": {"messageId": "marker"}})
    wait_for(control.acks, what="the marker")
    assert [a["messageId"] for a in control.acks()] == ["marker"] and control.state()["unacked"] == 1


def test_a_raw_frame_is_sent_verbatim_to_one_connection(server, control, stream):
    client = stream()
    assert control.push_raw("{not json") == 1
    client.ws.settimeout(2)
    assert client.ws.recv() == "{not json"


def test_a_raw_frame_without_connections_reaches_nobody(server, control):
    assert control.push_raw("{}") == 0


def test_malformed_upstream_frames_are_recorded_and_the_connection_survives(server, control, stream):
    client = stream()
    client.ws.send("not json at all")
    client.ws.send(json.dumps({"code": 200, "headers": {}}))
    control.send_message("still works")
    client.ack(client.recv_topic(BOT_TOPIC))
    wait_for(lambda: control.state()["acked"], what="the ACK")
    reasons = [b["reason"] for b in control.bad_frames()]
    assert reasons == ["not JSON", "no headers.messageId"]
    assert control.state()["acked"] == 1


def test_an_ack_for_an_unknown_message_is_recorded_as_unknown(server, control, stream):
    client = stream()
    client.ack({"headers": {"messageId": "made-up"}})
    assert [(a["messageId"], a["kind"]) for a in wait_for(control.acks)] == [("made-up", "unknown")]


def test_reset_clears_records_but_keeps_connections(server, control, stream):
    client = stream()
    control.send_message("x")
    client.ack(client.recv_topic(BOT_TOPIC))
    wait_for(lambda: control.state()["acked"], what="the ACK")  # before the reset, not after it
    control.reset()
    state = control.state()
    assert state["connections"] == 1 and state["acked"] == 0 and state["injected"] == 0
    assert control.acks() == [] and control.pushes() == []


def test_reset_with_config_restores_start_up_settings_and_clears_faults(server, control, stream):
    client = stream()
    control.configure(redeliver_after=1, qps_limits={"webhook": 1})
    control.fault("freeze")
    control.fault("reject_auth")
    control.reset(config=True)
    config = control.config()
    assert config["redeliver_after"] == 60.0 and config["qps_limits"] == {}
    assert control.state()["auth_rejected"] is False
    assert control.connections()[0]["frozen"] is False
    client.ws.ping(b"alive")
    assert client.ws.recv_data_frame(control_frame=True)[0] == websocket.ABNF.OPCODE_PONG


def test_config_rejects_unknown_keys_and_bad_values(server, control):
    with pytest.raises(SandboxError):
        control.configure(nonsense=1)
    with pytest.raises(SandboxError):
        control.configure(redeliver_after="soon")
    with pytest.raises(SandboxError):
        control.configure(qps_limits={"everything": 5})
    config = control.configure(redeliver_after=5, qps_limits={"robot_send": 20})
    assert config["redeliver_after"] == 5.0 and config["qps_limits"] == {"robot_send": 20.0}
    assert "client_secret" not in config


def test_an_unknown_fault_is_refused(server, control):
    with pytest.raises(SandboxError, match="unknown fault"):
        control.fault("explode")


def test_a_message_with_unknown_fields_is_refused(server, control):
    with pytest.raises(SandboxError, match="unknown message fields"):
        control.send_message("x", colour="red")
    with pytest.raises(SandboxError, match="conversation_type"):
        control.send_message("x", conversation_type="3")
