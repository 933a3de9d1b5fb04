"""What to do with each downstream frame: a table by (type, topic); bad input is answered, never fatal.

Hostile frames: invalid UTF-8 is decoded with U+FFFD in place of the bad bytes (logged; the push
goes on, so the user is answered). A push larger than `max_frame_bytes` (INGEST_MAX_FRAME_BYTES,
256 KiB) is read, so it is made durable and ACKed like any other — DingTalk would not send it again —
but only as a minimal envelope: who sent it where, its ids and `OVERSIZED` (the size), never its
content; preprocess answers it with a polite "too large". No frame content is logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from conf.logs import message_context
from contract.envelope import OVERSIZED_KEY, Envelope
from ingest.buffer import AckTarget, EnvelopeBuffer, Pending
from ingest.envelope import envelope_from_frame
from ingest.metrics import IngestMetrics
from ingest.protocol import (
    TOPIC_BOT_MESSAGE,
    TOPIC_CARD_CALLBACK,
    TOPIC_DISCONNECT,
    TOPIC_PING,
    TYPE_EVENT,
    TYPE_SYSTEM,
    Frame,
    FrameError,
    parse_frame,
    pong,
    response_frame,
)

log = logging.getLogger(__name__)

# Frames this large are legal (ingest never truncates) but worth one line for the operator.
LARGE_FRAME_BYTES = 64 * 1024
# SYSTEM topics some gateways send as liveness signals (NODE handles them); nothing to answer.
LIVENESS_TOPICS = frozenset({"KEEPALIVE", "CONNECTED", "REGISTERED"})
CALLBACK_TOPICS = frozenset({TOPIC_BOT_MESSAGE, TOPIC_CARD_CALLBACK})
MAX_FRAME_BYTES = 256 * 1024
OVERSIZED = OVERSIZED_KEY
# What an oversized robot message keeps: enough to answer it, nothing of what it said.
_ROUTING_KEYS = ("msgId", "conversationId", "conversationType", "senderId", "senderStaffId", "senderNick",
                 "senderCorpId", "chatbotCorpId", "chatbotUserId", "robotCode", "sessionWebhook",
                 "sessionWebhookExpiredTime", "createAt", "isInAtList", "conversationTitle")


def minimal(envelope: Envelope, size: int) -> Envelope:
    """The envelope of an oversized push: its routing fields and size, no content."""
    payload = {k: envelope.payload[k] for k in _ROUTING_KEYS if k in envelope.payload}
    payload.update(msgtype="text", text={"content": ""}, **{OVERSIZED: size})
    return replace(envelope, msgtype="text", payload=payload)


def _decoded(raw: bytes | str) -> tuple[str, bool]:
    """The frame as text, and whether it held invalid UTF-8 (replaced by U+FFFD)."""
    if isinstance(raw, str):
        return raw, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def _message_id_of(raw: str) -> str:
    """Best effort: the messageId of a frame parse_frame refused, so it can still be answered."""
    try:
        headers = json.loads(raw).get("headers") or {}
        return str(headers.get("messageId") or "")
    except (ValueError, AttributeError, TypeError):
        return ""


def _text_content(payload: dict) -> str:
    text = payload.get("text")
    return str(text.get("content") or "") if isinstance(text, dict) else ""


class FrameRouter:
    """Turns frames into pending envelopes, answers SYSTEM frames and rejects what cannot be used."""

    def __init__(
        self,
        tenant_id: str,
        buffer: EnvelopeBuffer,
        metrics: IngestMetrics,
        on_disconnect: Callable[[AckTarget], None],
        overflow: Callable[[Pending], bool] | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.tenant_id = tenant_id
        self.buffer = buffer
        self.metrics = metrics
        self.on_disconnect = on_disconnect
        # Where a push goes that the buffer cannot take (full, or closed at shutdown): the journal,
        # which ACKs it. False from it (no journal, or the journal is full) leaves the push un-ACKed.
        self.overflow = overflow

    def handle(self, target: AckTarget, raw: bytes, read_at: float) -> None:
        text, invalid = _decoded(raw)
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            self._reject_unparsable(target, text, len(raw), exc)
            return
        if invalid:
            self.metrics.bad_frames.labels("invalid_utf8").inc()
            log.warning("%s: frame with invalid UTF-8 (%d bytes), bad bytes replaced by U+FFFD messageId=%s",
                        target.name, len(raw), frame.message_id)
        self.metrics.count_frame(frame.type, frame.topic)
        if frame.type == TYPE_SYSTEM:
            self._system(target, frame)
        elif frame.type == TYPE_EVENT or frame.topic in CALLBACK_TOPICS:
            self._business(target, frame, raw, read_at)
        else:
            self._answer(target, frame.message_id, 404, "topic not handled", reason="unknown_topic")
            log.warning(
                "%s: %s topic %r not handled; answered 404 messageId=%s",
                target.name, frame.type, frame.topic, frame.message_id,
            )

    def _system(self, target: AckTarget, frame: Frame) -> None:
        if frame.topic == TOPIC_PING:
            target.send_text(pong(frame))
        elif frame.topic == TOPIC_DISCONNECT:
            # ACK first (GO does) so the server does not repeat the command, then dial a new socket.
            target.send_text(response_frame(frame.message_id, {}))
            log.info("%s: server sent disconnect (%s) messageId=%s", target.name, frame.data[:200], frame.message_id)
            self.on_disconnect(target)
        elif frame.topic in LIVENESS_TOPICS:
            log.debug("%s: SYSTEM %s messageId=%s", target.name, frame.topic, frame.message_id)
        else:
            self._answer(target, frame.message_id, 404, "topic not handled", reason="unknown_topic")
            log.warning(
                "%s: SYSTEM topic %r not handled; answered 404 messageId=%s", target.name, frame.topic, frame.message_id
            )

    def _business(self, target: AckTarget, frame: Frame, raw: bytes, read_at: float) -> None:
        try:
            envelope = envelope_from_frame(frame, self.tenant_id, received_at=time.time())
        except FrameError as exc:
            # Answer 400 so the server stops re-pushing a message nobody can ever handle.
            self._answer(target, frame.message_id, 400, str(exc)[:200], reason="bad_data")
            log.warning(
                "%s: unusable %s push answered 400 messageId=%s: %s", target.name, frame.type, frame.message_id, exc
            )
            return
        ids = f"msgId={envelope.msg_id} messageId={frame.message_id}"
        # Every line about this push names it (conf/logs.py), JSON lines included.
        with message_context(envelope.msg_id, "ingest", envelope.conversation_id, envelope.tenant_id):
            if len(raw) > self.max_frame_bytes and frame.topic == TOPIC_BOT_MESSAGE:
                self.metrics.bad_frames.labels("oversized").inc()
                log.warning("%s: push of %d bytes is over INGEST_MAX_FRAME_BYTES (%d): kept without its content, "
                            "the sender is told %s", target.name, len(raw), self.max_frame_bytes, ids)
                envelope = minimal(envelope, len(raw))
            elif len(raw) > LARGE_FRAME_BYTES:
                log.info("%s: large push of %d bytes kept whole %s", target.name, len(raw), ids)
            if envelope.msgtype == "text" and not _text_content(envelope.payload).strip():
                log.info("%s: empty text message %s", target.name, ids)
            item = Pending(envelope, frame, target, read_at)
            if not self.buffer.offer(item):
                self._overflow(target, item, ids)
        self.metrics.buffer_size.set(len(self.buffer))

    def _overflow(self, target: AckTarget, item: Pending, ids: str) -> None:
        closing = self.buffer.closed
        if self.overflow is not None and self.overflow(item):
            if not closing:
                self.metrics.overflowed.inc()
            return
        reason = "shutting_down" if closing else ("journal_full" if self.overflow is not None else "buffer_full")
        self.metrics.not_acked.labels(reason).inc()
        log.warning("%s: push left without ACK (%s; %d envelopes buffered) %s",
                    target.name, reason.replace("_", " "), len(self.buffer), ids)

    def _reject_unparsable(self, target: AckTarget, raw: str, size: int, exc: FrameError) -> None:
        message_id = _message_id_of(raw)
        if message_id:
            self._answer(target, message_id, 400, str(exc)[:200], reason="malformed")
            log.warning("%s: malformed frame answered 400 messageId=%s: %s", target.name, message_id, exc)
        else:
            # Nothing to echo: an answer without messageId means nothing to the server.
            self.metrics.bad_frames.labels("malformed").inc()
            log.warning("%s: malformed frame of %d bytes skipped (%s)", target.name, size, str(exc)[:120])

    def _answer(self, target: AckTarget, message_id: str, code: int, message: str, reason: str) -> None:
        self.metrics.bad_frames.labels(reason).inc()
        target.send_text(response_frame(message_id, {}, code=code, message=message))
