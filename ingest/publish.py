"""Make envelopes durable on the broker: persistent Celery messages, publisher-confirmed in batches."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import amqp
import kombu
import kombu.serialization
from celery import Celery
from kombu.entity import PERSISTENT_DELIVERY_MODE, maybe_delivery_mode
from kombu.exceptions import KombuError

from contract.pipeline import EXCHANGE, PREPROCESS, chain_field
from ingest import fastjson

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker cannot be reached or did not confirm in time; the batch is not durable."""


class UnencodableEnvelope(Exception):
    """Envelope `index` of a batch cannot be serialised; nothing of the batch was written."""

    def __init__(self, index: int, cause: Exception) -> None:
        super().__init__(f"envelope {index} of the batch cannot be encoded: {cause!r}")
        self.index = index


@dataclass(frozen=True)
class TaskMessage:
    """One encoded Celery task message: what the broker stores, no I/O done yet."""

    task_id: str
    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]


def message_app() -> Celery:
    """A Celery app that only encodes task messages (JSON, persistent); the listener runs no tasks
    and loads none of the workers' code: names and the chain's shape come from contract.pipeline."""
    app = Celery("dtbot", fixups=[], set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], task_default_delivery_mode="persistent")
    return app


def first_stage_queue() -> kombu.Queue:
    """The durable queue of the pipeline's first stage, declared as the workers declare it."""
    exchange = kombu.Exchange(EXCHANGE, type="direct", durable=True)
    return kombu.Queue(PREPROCESS.queue, exchange, routing_key=PREPROCESS.queue, durable=True)


class PipelineMessages:
    """Celery task messages that start the pipeline for one envelope.

    `chain.apply_async(producer=...)` drops the producer (celery 5.7 `_chain.run` swallows it and
    publishes on a pooled connection without confirms), so the chain is sent the way `_chain.run`
    sends it: the first stage's task message carries the remaining stages in its `chain` field
    (`contract.pipeline.chain_field`) and workers continue from there.

    Celery builds that message (`as_task_v2`) once, at start, for a placeholder; per envelope only
    what differs is filled in: task id, argsrepr and the envelope in the body. Building it with
    Celery and kombu per message (signatures, header merging, serializer lookup) was half of the
    listener's CPU at 2,000 msgs/s. tests/ingest/test_publish.py checks that the result equals
    what `send_task_message` publishes.
    """

    def __init__(self, app: Celery | None = None) -> None:
        self.app = app = app or message_app()
        self.task_name: str = PREPROCESS.task
        self.queue_name: str = PREPROCESS.queue
        # The message's `chain` field lists the remaining stages last-first, as plain dicts.
        self.rest: list[dict[str, Any]] | None = chain_field(PREPROCESS.name) or None
        self.origin = f"ingest@{socket.gethostname()}"
        template = app.amqp.as_task_v2(
            _PLACEHOLDER_ID, self.task_name, args=(None,), kwargs={}, chain=self.rest,
            origin=self.origin, argsrepr="", kwargsrepr="{}",
        )
        self._headers: dict[str, Any] = dict(template.headers)
        self._properties: dict[str, Any] = dict(template.properties)
        id_fields = [k for k, v in self._headers.items() if v == _PLACEHOLDER_ID]
        id_props = [k for k, v in self._properties.items() if v == _PLACEHOLDER_ID]
        if id_fields != ["id", "root_id"] or id_props != ["correlation_id"]:
            raise ValueError(f"unexpected Celery message layout: headers {id_fields}, properties {id_props}")
        _args, kwargs, embed = template.body
        self.content_type, self.content_encoding, tail = kombu.serialization.dumps(
            [kwargs, embed], serializer=app.conf.task_serializer
        )
        if self.content_type != "application/json":
            raise ValueError(f"the pipeline's task serializer must be json, not {self.content_type}")
        # "[kwargs, embed]" → the body "[[envelope], kwargs, embed]" is "[[" + envelope + "]," + tail[1:].
        self._body_tail = b"]," + tail.encode(self.content_encoding)[1:]
        self.delivery_mode = maybe_delivery_mode(app.conf.task_default_delivery_mode)
        if self.delivery_mode != PERSISTENT_DELIVERY_MODE:
            raise ValueError("pipeline messages must be persistent (task_default_delivery_mode)")
        self._amqp_properties = _AmqpProperties.build(self)

    def encode(self, envelope: dict[str, Any]) -> TaskMessage:
        """The task message for `envelope`; raises TypeError/ValueError if it is not JSON."""
        task_id = str(uuid.uuid4())
        headers = self._headers.copy()
        headers["id"] = headers["root_id"] = task_id
        # saferepr of a large envelope is slow; the msg id is what an operator looks for.
        headers["argsrepr"] = f"(<envelope msg_id={envelope.get('msg_id', '')!r}>,)"
        properties = self._properties.copy()
        properties["correlation_id"] = task_id
        properties["delivery_mode"] = self.delivery_mode
        body = b"[[" + _dumps(envelope) + self._body_tail
        return TaskMessage(task_id, body, headers, properties)

    def amqp_message(self, message: TaskMessage) -> amqp.Message:
        """The py-amqp message of `message`, its properties serialised from the template."""
        props = self._amqp_properties
        if props is None:  # py-amqp lays properties out differently than expected: the slow way
            return amqp.Message(message.body, **self.amqp_properties(message))
        return _PrebuiltMessage(message.body, props.serialize(message.task_id, message.headers["argsrepr"]))

    def amqp_properties(self, message: TaskMessage) -> dict[str, Any]:
        """The properties py-amqp would be given for `message` (as kombu's prepare_message does)."""
        return dict(priority=0, content_type=self.content_type, content_encoding=self.content_encoding,
                    application_headers=message.headers, **message.properties)

    def publish(self, producer: kombu.Producer, message: TaskMessage) -> None:
        """Publish `message` through kombu (any transport; no retry, no declare)."""
        producer.publish(
            message.body, exchange="", routing_key=self.queue_name, content_type=self.content_type,
            content_encoding=self.content_encoding, headers=message.headers, retry=False, declare=[],
            **message.properties,
        )


_PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
_ARGSREPR_MARK = "\x00argsrepr of this message\x00"


class _PrebuiltMessage(amqp.Message):
    """An amqp.Message whose content-header properties are already serialised."""

    __slots__ = ("_serialized",)

    def __init__(self, body: bytes, serialized: bytes) -> None:
        super().__init__(body)
        self._serialized = serialized

    def _serialize_properties(self) -> bytes:
        return self._serialized


@dataclass(frozen=True)
class _AmqpProperties:
    """The serialised AMQP properties of a task message, cut where the per-message values go.

    py-amqp encodes the ~20 Celery headers field by field for every message (a fifth of the
    publisher's CPU). They are encoded once, for placeholders: the task id (always 36 chars, so
    substituted in place) and argsrepr (whose own length and the table's length are rewritten).
    """

    head: bytes  # flags, content type and encoding: up to the headers table's length
    table_len: int  # of the table without argsrepr's value
    middle: bytes  # table entries up to argsrepr's value length
    tail: bytes  # the rest of the table and the properties after it

    @classmethod
    def build(cls, messages: PipelineMessages) -> _AmqpProperties | None:
        sample = TaskMessage(_PLACEHOLDER_ID, b"", dict(messages._headers, argsrepr=_ARGSREPR_MARK),
                             dict(messages._properties, delivery_mode=messages.delivery_mode))
        sample.headers["id"] = sample.headers["root_id"] = sample.properties["correlation_id"] = _PLACEHOLDER_ID
        raw = amqp.Message(b"", **messages.amqp_properties(sample))._serialize_properties()
        mark = _ARGSREPR_MARK.encode()
        # Flags (2 bytes), content_type and content_encoding (short strings), then the table.
        at = 2 + 1 + len(messages.content_type) + 1 + len(messages.content_encoding)
        pos = raw.find(mark)
        if pos < at + 8 or raw.count(mark) != 1:
            return None
        (table_len,) = struct.unpack_from(">I", raw, at)
        (mark_len,) = struct.unpack_from(">I", raw, pos - 4)
        if mark_len != len(mark):
            return None
        built = cls(raw[:at], table_len - len(mark), raw[at + 4 : pos - 4], raw[pos + len(mark) :])
        # Check against py-amqp itself; on any difference publish the slow way (and say so).
        for task_id, argsrepr in ((str(uuid.uuid4()), "(<envelope msg_id='x'>,)"), (str(uuid.uuid4()), "中文" * 40)):
            check = dict(sample.headers, id=task_id, root_id=task_id, argsrepr=argsrepr)
            probe = TaskMessage(task_id, b"", check, dict(sample.properties, correlation_id=task_id))
            expected = amqp.Message(b"", **messages.amqp_properties(probe))._serialize_properties()
            if built.serialize(task_id, argsrepr) != expected:
                log.warning("py-amqp lays out message properties unexpectedly; encoding them per message")
                return None
        return built

    def serialize(self, task_id: str, argsrepr: str) -> bytes:
        value = argsrepr.encode("utf-8", "surrogatepass")
        return b"".join((
            self.head, struct.pack(">I", self.table_len + len(value)), self.middle,
            struct.pack(">I", len(value)), value, self.tail,
        )).replace(_PLACEHOLDER_BYTES, task_id.encode())


_PLACEHOLDER_BYTES = _PLACEHOLDER_ID.encode()
# Confirms are small frames; reading more than this in one poll would delay sending and ACKs.
_MAX_FRAMES_PER_POLL = 100


def _dumps(envelope: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; raises TypeError/ValueError for what JSON cannot hold."""
    return fastjson.dumps(envelope)


@contextlib.contextmanager
def _coalesced_writes(transport: Any, flush_bytes: int = 1 << 20) -> Iterator[None]:
    """Send a batch's AMQP frames in a few large writes instead of one syscall per message.

    py-amqp writes every publish with its own `sendall` (and wakes the broker each time); at
    2,000 msgs/s that was ~20% of the publisher's CPU. Frames are copied (py-amqp hands out a view
    of a reused buffer) and flushed in order when the batch ends or 1 MiB is pending. On an error
    nothing more is written: the connection is discarded and the batch published again.
    """
    original = getattr(transport, "_write", None)
    if original is None:  # another transport implementation: write as usual
        yield
        return
    chunks: list[bytes] = []
    pending = 0

    def collect(data: Any) -> None:
        nonlocal pending
        chunks.append(bytes(data))
        pending += len(chunks[-1])
        if pending >= flush_bytes:
            flush()

    def flush() -> None:
        nonlocal pending
        if chunks:
            data = b"".join(chunks)
            chunks.clear()
            pending = 0
            original(data)

    transport._write = collect
    try:
        yield
        flush()
    finally:
        transport._write = original


@dataclass
class _Sent:
    """A batch written to the broker whose confirms are outstanding."""

    first_tag: int
    last_tag: int
    sent_at: float
    task_ids: list[str]  # by tag order: finds the tag of a returned message


class BrokerPublisher:
    """One broker connection and channel owned by the publisher thread.

    RabbitMQ: the channel is put in confirm mode once and every message is published `mandatory`:
    one the broker cannot route (its queue was deleted) comes back as a basic.return before its
    ack, counts as refused (published again by the hand-off) and the queue is declared again
    before the next batch. Without `mandatory` RabbitMQ confirms an unroutable message, drops it,
    and the push would be ACKed. `send` writes a batch and returns without
    waiting; `poll` reads broker acks (which may cover ranges, multiple=True) and hands back, in
    send order, the per-envelope outcome of every batch whose delivery tags are all settled. So
    the next batch is written while the previous one is still being confirmed (asynchronous
    confirms): waiting for each batch before taking the next doubled the ACK latency.
    Redis: no confirms exist, so a successful LPUSH (one pipeline per batch) is the durability
    point and `send` settles the batch at once.
    `publish_batch` is the blocking form: send one batch and wait for its confirms.
    """

    def __init__(
        self,
        broker_url: str,
        confirm_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        messages: PipelineMessages | None = None,
        heartbeat: float = 30.0,
    ) -> None:
        self.broker_url = broker_url
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self.heartbeat_seconds = heartbeat
        self.messages = messages or PipelineMessages()
        self._conn: kombu.Connection | None = None
        self._producer: kombu.Producer | None = None
        self._channel: Any = None
        self._uses_confirms = False
        self._next_tag = 1
        self._nacked: set[int] = set()
        self._pending: set[int] = set()
        self._sent: deque[_Sent] = deque()
        self._redeclare = False
        self.returned = 0  # messages the broker could not route, since start
        self._settled_now: list[list[bool]] = []  # Redis: batches durable as soon as written

    @property
    def connected(self) -> bool:
        return self._producer is not None

    @property
    def in_flight(self) -> int:
        """Batches sent whose outcome `poll` has not handed back yet."""
        return len(self._sent) + len(self._settled_now)

    @property
    def _errors(self) -> tuple[type[BaseException], ...]:
        conn = self._conn
        extra: tuple[type[BaseException], ...] = ()
        if conn is not None:
            extra = tuple(conn.connection_errors) + tuple(conn.channel_errors)
        return (OSError, socket.timeout, KombuError, *extra)

    def connect(self) -> None:
        """Open connection and channel, enable confirms, declare the first stage's queue."""
        self.close()
        conn = kombu.Connection(
            self.broker_url,
            connect_timeout=self.connect_timeout,
            heartbeat=self.heartbeat_seconds,
            # A broker that stops reading must not block the publisher thread forever.
            transport_options={"write_timeout": self.confirm_timeout},
        )
        self._conn = conn
        try:
            # One attempt: the hand-off owns retries (with back-off and an outage log line).
            conn.ensure_connection(max_retries=0, timeout=self.connect_timeout)
            channel = conn.channel()
            self._uses_confirms = conn.transport.driver_type == "amqp"
            if self._uses_confirms:
                channel.confirm_select()
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
                channel.events["basic_return"].add(self._on_return)
                self._next_tag = 1
            first_stage_queue()(channel).declare()
            self._redeclare = False
            self._channel = channel
            self._producer = kombu.Producer(channel, auto_declare=False)
        except self._errors as exc:
            self.close()
            raise BrokerUnavailable(f"cannot connect to the broker: {exc!r}") from exc

    def close(self) -> None:
        """Drop the connection; batches not yet handed back by `poll` are forgotten (not durable)."""
        conn, self._conn, self._producer, self._channel = self._conn, None, None, None
        self._nacked.clear()
        self._pending.clear()
        self._sent.clear()
        self._settled_now.clear()
        if conn is not None:
            try:
                conn.release()
            except Exception as exc:  # closing a dead connection may raise anything; it is gone
                log.debug("closing broker connection: %r", exc)

    def heartbeat(self) -> None:
        """Keep an idle AMQP connection alive and notice a dead one before the next batch."""
        if self._conn is None:
            return
        try:
            # Read what arrived while idle (server heartbeats, late confirms): py-amqp declares
            # the connection dead when it has not *read* a heartbeat for two intervals.
            with contextlib.suppress(socket.timeout):
                self._conn.drain_events(timeout=0)
            self._conn.heartbeat_check()
        except self._errors as exc:
            self.close()
            raise BrokerUnavailable(f"broker heartbeat failed: {exc!r}") from exc

    def send(self, envelopes: list[dict[str, Any]]) -> None:
        """Write one batch without waiting for it; `poll` reports its outcome.

        Raises UnencodableEnvelope (nothing written, connection kept) or BrokerUnavailable
        (connection closed: every batch not yet reported is lost and must be sent again).
        """
        if self._producer is None:
            raise BrokerUnavailable("not connected")
        encoded: list[TaskMessage] = []
        encode = self.messages.encode
        for index, env in enumerate(envelopes):
            try:
                encoded.append(encode(env))
            except (TypeError, ValueError) as exc:
                raise UnencodableEnvelope(index, exc) from exc
        try:
            if self._redeclare:
                first_stage_queue()(self._channel).declare()
                self._redeclare = False
                log.info("declared %s again after an unroutable message", self.messages.queue_name)
            if self._uses_confirms:
                self._send_confirmed(encoded)
            else:
                self._send_redis(encoded)
        except self._errors as exc:
            self.close()
            raise BrokerUnavailable(f"publish failed: {exc!r}") from exc

    def _send_confirmed(self, encoded: list[TaskMessage]) -> None:
        assert self._conn is not None
        # py-amqp's channel directly: kombu's Producer.publish re-derives routing, serializer
        # and properties per message; everything it would decide is fixed in PipelineMessages.
        publish = self._channel.basic_publish
        to_amqp, queue = self.messages.amqp_message, self.messages.queue_name
        first = self._next_tag
        with _coalesced_writes(self._conn.connection.transport):
            for msg in encoded:
                self._pending.add(self._next_tag)
                self._next_tag += 1
                publish(to_amqp(msg), exchange="", routing_key=queue, mandatory=True)
        self._sent.append(_Sent(first, self._next_tag - 1, time.monotonic(), [m.task_id for m in encoded]))

    def _send_redis(self, encoded: list[TaskMessage]) -> None:
        assert self._producer is not None
        producer, publish = self._producer, self.messages.publish
        with producer.batch(max_size=max(1, len(encoded))):  # one LPUSH pipeline
            for msg in encoded:
                publish(producer, msg)
        self._settled_now.append([True] * len(encoded))

    def poll(self, timeout: float) -> list[list[bool]]:
        """Read confirms for up to `timeout` s; per settled batch (oldest first) which are durable.

        Raises BrokerUnavailable when the connection fails or the oldest batch has waited longer
        than `confirm_timeout` (the connection is closed: what was not reported is not durable).
        """
        done, self._settled_now = self._settled_now, []
        if self._sent and self._conn is not None:
            try:
                # drain_events reads one frame: wait for the first, then take what has arrived.
                wait = 0.0 if self._settled_front() else timeout
                for _ in range(_MAX_FRAMES_PER_POLL):
                    self._conn.drain_events(timeout=wait)
                    wait = 0.0
            except TimeoutError:
                pass
            except self._errors as exc:
                self.close()
                raise BrokerUnavailable(f"reading confirms failed: {exc!r}") from exc
            while self._settled_front():
                sent = self._sent.popleft()
                tags = range(sent.first_tag, sent.last_tag + 1)
                done.append([t not in self._nacked for t in tags])
                if self._nacked:
                    self._nacked.difference_update(tags)
        if self._sent and time.monotonic() - self._sent[0].sent_at > self.confirm_timeout:
            missing = len(self._pending)
            self.close()
            raise BrokerUnavailable(f"{missing} publisher confirms missing after {self.confirm_timeout}s")
        return done

    def _settled_front(self) -> bool:
        if not self._sent:
            return False
        # Tags are settled in any order; the oldest batch is done when none of its tags is pending.
        return not self._pending or min(self._pending) > self._sent[0].last_tag

    def publish_batch(self, envelopes: list[dict[str, Any]]) -> list[bool]:
        """Send one batch and wait for its confirms; which envelopes are durable.

        Only when nothing else is in flight. Raises BrokerUnavailable (or UnencodableEnvelope).
        """
        if self.in_flight:
            raise RuntimeError("publish_batch while other batches are in flight")
        self.send(envelopes)
        while True:
            done = self.poll(self.confirm_timeout)
            if done:
                return done[0]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked |= self._settle(delivery_tag, multiple)

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: amqp.Message) -> None:
        """An unroutable message (it comes before its ack): refuse its tag, declare the queue again."""
        self.returned += 1
        self._redeclare = True
        task_id = (message.properties or {}).get("correlation_id")
        for sent in self._sent:
            if task_id in sent.task_ids:
                self._nacked.add(sent.first_tag + sent.task_ids.index(task_id))
                break
        log.warning("broker returned a message as unroutable (%s) exchange=%r routing_key=%r task_id=%s; "
                    "it will be published again", exc, exchange, routing_key, task_id)

    def _settle(self, delivery_tag: int, multiple: bool) -> set[int]:
        """Remove the tags a broker ack/nack covers (multiple=True: every tag up to it)."""
        if multiple:
            covered = {t for t in self._pending if t <= delivery_tag}
        else:
            covered = {delivery_tag} & self._pending
        self._pending -= covered
        return covered
