"""Every frame gets the right answer; bad input is answered or skipped with one log line, never fatal."""

from __future__ import annotations

import json
import logging

import pytest

from contract.envelope import OVERSIZED_KEY
from ingest.buffer import EnvelopeBuffer
from ingest.dispatch import FrameRouter
from ingest.metrics import IngestMetrics
from tests.ingest.conftest import RecordingSocket, bot_frame


@pytest.fixture
def setup():
    buf = EnvelopeBuffer(capacity=3)
    metrics = IngestMetrics()
    disconnects: list = []
    router = FrameRouter("t1", buf, metrics, disconnects.append)
    return router, buf, metrics, disconnects, RecordingSocket()


def _system(topic: str, data: dict, message_id: str = "sys-1") -> bytes:
    return json.dumps(
        {"specVersion": "1.0", "type": "SYSTEM", "headers": {"topic": topic, "messageId": message_id,
         "contentType": "application/json", "time": "1"}, "data": json.dumps(data)}
    ).encode()


def _frame(type_: str, topic: str, data: str, message_id: str = "mid-x") -> bytes:
    return json.dumps({"type": type_, "headers": {"topic": topic, "messageId": message_id}, "data": data}).encode()


def _metric(metrics: IngestMetrics, name: str, **labels) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_a_ping_is_answered_at_once_with_the_same_opaque(setup):
    router, buf, _, _, sock = setup
    router.handle(sock, _system("ping", {"opaque": "abc-123"}, "ping-9"), 0.0)
    (answer,) = sock.sent
    assert answer["code"] == 200
    assert answer["headers"]["messageId"] == "ping-9"
    assert json.loads(answer["data"]) == {"opaque": "abc-123"}
    assert len(buf) == 0


def test_a_disconnect_is_acked_and_reported_so_a_new_socket_is_dialled(setup):
    router, _, _, disconnects, sock = setup
    router.handle(sock, _system("disconnect", {"reason": "persistent connection is timeout"}, "d-1"), 0.0)
    assert sock.sent[0]["code"] == 200 and sock.sent[0]["headers"]["messageId"] == "d-1"
    assert disconnects == [sock]


def test_a_robot_message_is_buffered_not_acked_before_it_is_durable(setup):
    router, buf, metrics, _, sock = setup
    router.handle(sock, bot_frame("msg-1").encode(), 12.5)
    assert sock.sent == []
    (item,) = buf.take(10, timeout=0)
    assert item.envelope.msg_id == "msg-1" and item.target is sock and item.read_at == 12.5
    assert _metric(metrics, "ingest_frames_total", type="CALLBACK", topic="/v1.0/im/bot/messages/get") == 1


def test_an_event_is_buffered_whatever_its_topic(setup):
    router, buf, _, _, sock = setup
    router.handle(sock, _frame("EVENT", "*", json.dumps({"eventId": "e-1"})), 0.0)
    (item,) = buf.take(10, timeout=0)
    assert item.envelope.msg_id == "e-1" and item.frame.type == "EVENT"


def test_malformed_json_is_skipped_with_a_log_line(setup, caplog):
    router, buf, metrics, _, sock = setup
    router.handle(sock, b'{"type": "CALLBACK", "headers": {', 0.0)
    assert sock.sent == [] and len(buf) == 0
    assert "malformed frame of 33 bytes skipped" in caplog.text
    assert _metric(metrics, "ingest_bad_frames_total", reason="malformed") == 1


def test_a_frame_without_message_id_is_skipped(setup, caplog):
    router, buf, _, _, sock = setup
    router.handle(sock, json.dumps({"type": "CALLBACK", "headers": {"topic": "/v1.0/im/bot/messages/get"},
                                    "data": "{}"}).encode(), 0.0)
    assert sock.sent == [] and len(buf) == 0
    assert "no headers.messageId" in caplog.text


def test_data_that_is_not_json_is_answered_400_so_it_is_not_repushed_forever(setup, caplog):
    router, buf, _, _, sock = setup
    router.handle(sock, _frame("CALLBACK", "/v1.0/im/bot/messages/get", "{oops", "mid-bad"), 0.0)
    (answer,) = sock.sent
    assert answer["code"] == 400 and answer["headers"]["messageId"] == "mid-bad"
    assert len(buf) == 0
    assert "messageId=mid-bad" in caplog.text


def test_a_robot_message_without_msg_id_is_answered_400(setup, caplog):
    router, buf, _, _, sock = setup
    router.handle(sock, _frame("CALLBACK", "/v1.0/im/bot/messages/get", json.dumps({"text": {"content": "x"}}),
                               "mid-nomsg"), 0.0)
    assert sock.sent[0]["code"] == 400
    assert "messageId=mid-nomsg" in caplog.text and len(buf) == 0


def test_an_unknown_frame_type_with_a_message_id_is_answered_400(setup):
    router, _, _, _, sock = setup
    router.handle(sock, _frame("GOSSIP", "x", "{}", "mid-g"), 0.0)
    assert sock.sent[0]["code"] == 400 and sock.sent[0]["headers"]["messageId"] == "mid-g"


def test_an_unknown_callback_topic_is_answered_404_topic_not_handled(setup, caplog):
    router, buf, metrics, _, sock = setup
    router.handle(sock, _frame("CALLBACK", "/v1.0/graph/api/invoke", "{}", "mid-404"), 0.0)
    (answer,) = sock.sent
    assert answer["code"] == 404 and answer["message"] == "topic not handled"
    assert len(buf) == 0
    assert _metric(metrics, "ingest_frames_total", type="CALLBACK", topic="other") == 1
    assert "messageId=mid-404" in caplog.text


def test_an_unknown_system_topic_is_answered_404_but_keepalive_is_not_answered(setup):
    router, _, _, _, sock = setup
    router.handle(sock, _system("KEEPALIVE", {}), 0.0)
    assert sock.sent == []
    router.handle(sock, _system("rotate-keys", {}, "s-2"), 0.0)
    assert sock.sent[0]["code"] == 404


def test_a_large_text_under_the_cap_is_kept_whole_with_one_log_line(setup, caplog):
    router, buf, _, _, sock = setup
    caplog.set_level(logging.INFO)
    text = "长" * 30_000  # 90 KB: large, under INGEST_MAX_FRAME_BYTES
    router.handle(sock, bot_frame("msg-huge", text=text).encode(), 0.0)
    (item,) = buf.take(1, timeout=0)
    assert item.envelope.payload["text"]["content"] == text
    assert "large push" in caplog.text and "msgId=msg-huge" in caplog.text


def test_an_empty_text_still_becomes_an_envelope_with_one_log_line(setup, caplog):
    router, buf, _, _, sock = setup
    caplog.set_level(logging.INFO)
    router.handle(sock, bot_frame("msg-empty", text="  ").encode(), 0.0)
    assert len(buf) == 1
    assert "empty text message msgId=msg-empty" in caplog.text


def test_a_full_buffer_drops_without_ack_counts_and_logs_the_msg_id(setup, caplog):
    router, buf, metrics, _, sock = setup
    for i in range(4):
        router.handle(sock, bot_frame(f"msg-{i}").encode(), 0.0)
    assert len(buf) == 3 and sock.sent == []
    assert _metric(metrics, "ingest_not_acked_total", reason="buffer_full") == 1
    assert "msgId=msg-3" in caplog.text
    assert _metric(metrics, "ingest_buffer_size") == 3


def test_without_a_journal_pushes_read_after_shutdown_began_stay_un_acked(setup):
    router, buf, metrics, _, sock = setup
    buf.close()
    router.handle(sock, bot_frame("late").encode(), 0.0)
    assert len(buf) == 0 and sock.sent == []
    assert _metric(metrics, "ingest_not_acked_total", reason="shutting_down") == 1


def test_what_the_buffer_cannot_take_goes_to_the_overflow_which_acks_it(setup):
    router, buf, metrics, _, sock = setup
    kept = []

    def overflow(item) -> bool:
        kept.append(item.envelope.msg_id)
        return True

    router.overflow = overflow
    for i in range(4):
        router.handle(sock, bot_frame(f"msg-{i}").encode(), 0.0)
    buf.close()
    router.handle(sock, bot_frame("late").encode(), 0.0)
    assert len(buf) == 3 and kept == ["msg-3", "late"]
    assert _metric(metrics, "ingest_buffer_overflows_total") == 1  # the closed buffer is no overflow
    assert _metric(metrics, "ingest_not_acked_total", reason="buffer_full") == 0


def test_when_the_overflow_cannot_keep_a_push_it_stays_un_acked_as_journal_full(setup, caplog):
    router, _, metrics, _, sock = setup
    router.overflow = lambda item: False
    for i in range(4):
        router.handle(sock, bot_frame(f"msg-{i}").encode(), 0.0)
    assert sock.sent == [] and _metric(metrics, "ingest_not_acked_total", reason="journal_full") == 1
    assert "journal full" in caplog.text and "msgId=msg-3" in caplog.text


def test_an_oversized_push_is_kept_without_its_content_so_it_is_acked_and_answered(setup, caplog):
    router, buf, metrics, _, sock = setup
    secret_text = "机密" * 50_000  # 300 KB
    router.handle(sock, bot_frame("msg-big", text=secret_text).encode(), 0.0)
    (item,) = buf.take(1, timeout=0)  # buffered: it becomes durable and is ACKed like any push
    payload = item.envelope.payload
    assert payload[OVERSIZED_KEY] > 256 * 1024 and payload["text"] == {"content": ""}
    assert payload["msgId"] == "msg-big" and payload.get("sessionWebhook")  # enough to answer
    assert "机密" not in json.dumps(item.envelope.to_dict(), ensure_ascii=False)
    assert "over INGEST_MAX_FRAME_BYTES" in caplog.text and "机密" not in caplog.text
    assert _metric(metrics, "ingest_bad_frames_total", reason="oversized") == 1


def test_invalid_utf8_is_replaced_and_the_push_goes_on(setup, caplog):
    router, buf, metrics, _, sock = setup
    raw = bot_frame("msg-bad", text="hello XX world").encode().replace(b"XX", b"\xff\xfe\xc3")
    router.handle(sock, raw, 0.0)
    (item,) = buf.take(1, timeout=0)
    assert item.envelope.payload["text"]["content"] == "hello \ufffd\ufffd\ufffd world"
    assert "invalid UTF-8" in caplog.text and "messageId=" in caplog.text
    assert _metric(metrics, "ingest_bad_frames_total", reason="invalid_utf8") == 1

