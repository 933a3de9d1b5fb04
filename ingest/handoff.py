"""The writer thread: make each waiting batch durable on the broker, then ACK it on its own socket."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from ingest.ackrecord import AckRecorder
from ingest.backoff import Backoff
from ingest.buffer import EnvelopeBuffer, Pending
from ingest.metrics import IngestMetrics
from ingest.protocol import ack_for
from ingest.publish import BrokerPublisher, BrokerUnavailable, UnencodableEnvelope

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 0.5
# While batches await confirms the thread waits on the broker's socket this long, then looks
# for new pushes: the most a push waits in the buffer behind an outstanding batch.
POLL_SECONDS = 0.001


class HandOff:
    """Takes batches from the buffer; publish; ACK each batch once the broker confirmed it.

    Batches are written as they form and confirmed asynchronously: the thread waits on the
    broker's socket while batches are outstanding and on the buffer when none are.

    While the broker is down the batch goes back to the buffer (still un-ACKed), the buffer fills
    up to its bound, and this thread reconnects with back-off; once the broker answers again the
    buffer drains in order.
    """

    def __init__(
        self,
        buffer: EnvelopeBuffer,
        publisher: BrokerPublisher,
        metrics: IngestMetrics,
        recorder: AckRecorder | None,
        batch_max: int = 200,
        backoff: Backoff | None = None,
    ) -> None:
        self.buffer = buffer
        self.publisher = publisher
        self.metrics = metrics
        self.recorder = recorder
        self.batch_max = batch_max
        self.backoff = backoff or Backoff()
        self.broker_up: bool | None = None  # None until the first connect attempt
        self._stop = threading.Event()
        self._stop_deadline = 0.0
        self._retry_at = 0.0
        self._isolate = 0  # after an unexpected error, publish one at a time to find the culprit
        # Sent, awaiting confirms, oldest first, with the time writing each batch began.
        self._in_flight: deque[tuple[list[Pending], float]] = deque()
        self._thread = threading.Thread(target=self._run, name="ingest-handoff", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_seconds: float) -> list[Pending]:
        """Keep making buffered envelopes durable for up to `grace_seconds`, then stop.

        Returns what is still buffered: those pushes stay un-ACKed and DingTalk redelivers them.
        """
        self._stop_deadline = time.monotonic() + grace_seconds
        self._stop.set()
        self.buffer.close()
        self._thread.join(grace_seconds + self.publisher.confirm_timeout + 1.0)
        self.publisher.close()
        return self.buffer.drain_queued()

    def _stopping_done(self) -> bool:
        if not self._stop.is_set():
            return False
        return len(self.buffer) == 0 or time.monotonic() >= self._stop_deadline

    def _run(self) -> None:
        try:
            while not self._stopping_done():
                if not self.publisher.connected and not self._connect():
                    continue
                if self._in_flight:
                    # Wait on the broker's socket, not the buffer: confirms free the oldest batches.
                    self._collect(0.0 if self.buffer.queued else POLL_SECONDS)
                busy = bool(self._in_flight)
                batch = self.buffer.take(1 if self._isolate else self.batch_max,
                                         timeout=0.0 if busy else IDLE_WAIT_SECONDS)
                if batch:
                    self._send(batch)
                elif not busy:
                    self._idle()
        finally:
            # Stopping with batches unconfirmed: they are not durable, so they stay un-ACKed.
            self._give_back()

    def _connect(self) -> bool:
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            # Interruptible: a stop request ends the back-off sleep (then the loop checks the deadline).
            if self._stop.is_set():
                time.sleep(min(wait, 0.1))
            else:
                self._stop.wait(wait)
            return False
        try:
            self.publisher.connect()
        except BrokerUnavailable as exc:
            self._broker_down(exc)
            return False
        if self.broker_up is False:
            log.info("broker reachable again; draining %d buffered envelopes", len(self.buffer))
        self.broker_up = True
        return True

    def _idle(self) -> None:
        try:
            self.publisher.heartbeat()
        except BrokerUnavailable as exc:
            self._broker_down(exc)

    def _broker_down(self, exc: BrokerUnavailable) -> None:
        delay = self.backoff.next_delay()
        self._retry_at = time.monotonic() + delay
        if self.broker_up is not False:
            self.metrics.broker_outages.inc()
            log.warning(
                "broker unreachable (%s): holding up to %d envelopes un-ACKed, retrying in %.1fs",
                exc, self.buffer.capacity, delay,
            )
        else:
            log.debug("broker still unreachable (%s); retrying in %.1fs", exc, delay)
        self.broker_up = False

    def _send(self, batch: list[Pending]) -> None:
        """Write `batch` to the broker (no waiting); it joins the batches awaiting confirms."""
        started = time.monotonic()
        try:
            self.publisher.send([_message_body(p) for p in batch])
        except UnencodableEnvelope as exc:
            self._drop_unencodable(batch, exc)
        except BrokerUnavailable as exc:
            self._give_back(batch)
            self._broker_down(exc)
        except Exception:  # a bug must not end the only publisher: find the culprit one by one
            log.exception("publishing failed unexpectedly msgIds=%s", _ids(batch))
            self.publisher.close()  # its state is unknown; what it had in flight is lost
            if len(batch) == 1:
                self._give_back()
                self._leave_un_acked(batch[0])
                self._isolate = max(0, self._isolate - 1)
            else:
                self._give_back(batch)
                self._isolate = len(batch)
        else:
            self._in_flight.append((batch, started))
            if self._isolate:
                self._isolate = max(0, self._isolate - len(batch))

    def _drop_unencodable(self, batch: list[Pending], exc: UnencodableEnvelope) -> None:
        """Leave the envelope that cannot be serialised un-ACKed; the rest goes out again."""
        self._leave_un_acked(batch[exc.index], exc)
        rest = batch[: exc.index] + batch[exc.index + 1 :]
        if rest:
            self.buffer.put_back(rest)

    def _leave_un_acked(self, item: Pending, exc: Exception | None = None) -> None:
        # DingTalk redelivers it; a poison push ends up abandoned after its redeliveries.
        self.buffer.settle(1)
        self.metrics.not_acked.labels("publish_error").inc()
        log.error("envelope cannot be published%s; left un-ACKed msgId=%s messageId=%s",
                  f" ({exc})" if exc else "", item.envelope.msg_id, item.frame.message_id)

    def _collect(self, timeout: float) -> None:
        """ACK the batches the broker has confirmed (oldest first); publish refused ones again."""
        try:
            outcomes = self.publisher.poll(timeout)
        except BrokerUnavailable as exc:
            self._give_back()
            self._broker_down(exc)
            return
        except Exception:
            log.exception("reading publisher confirms failed unexpectedly")
            self.publisher.close()
            self._give_back()
            return
        now = time.monotonic()
        for durable in outcomes:
            batch, sent_at = self._in_flight.popleft()
            self.metrics.confirm_latency.observe(now - sent_at)
            self.backoff.reset()
            confirmed = [p for p, ok in zip(batch, durable, strict=True) if ok]
            refused = [p for p, ok in zip(batch, durable, strict=True) if not ok]
            self.metrics.published.inc(len(confirmed))
            self._ack(confirmed)
            if refused:
                # A nack means the broker did not take responsibility: publish those again.
                log.warning("broker refused %d envelopes, publishing again msgIds=%s", len(refused), _ids(refused))
                self.buffer.put_back(refused)
            self.buffer.settle(len(confirmed))
        if outcomes:
            self.metrics.buffer_size.set(len(self.buffer))

    def _give_back(self, batch: list[Pending] | None = None) -> None:
        """Batches written but not confirmed (then `batch`) go back to the buffer's front, in order."""
        items = [p for sent, _ in self._in_flight for p in sent] + (batch or [])
        self._in_flight.clear()
        if items:
            self.buffer.put_back(items)

    def _ack(self, confirmed: list[Pending]) -> None:
        """One write per socket for the whole batch; latency is taken when that write returns."""
        by_target: dict[int, list[Pending]] = {}
        for item in confirmed:
            by_target.setdefault(id(item.target), []).append(item)
        latencies: list[float] = []
        acked_ids: list[str] = []
        debug = log.isEnabledFor(logging.DEBUG)
        for items in by_target.values():
            target = items[0].target
            if target.send_texts([ack_for(item.frame) for item in items]):
                now = time.monotonic()
                for item in items:
                    latencies.append(now - item.read_at)
                    acked_ids.append(item.envelope.msg_id)
                    if debug:
                        log.debug("acked msgId=%s in %.1f ms", item.envelope.msg_id, latencies[-1] * 1000)
                continue
            for item in items:
                # Durable but its socket is gone: the redelivery is deduplicated downstream by msgId.
                self.metrics.acks_skipped.inc()
                log.info(
                    "durable but socket %s closed; ACK skipped msgId=%s messageId=%s",
                    target.name, item.envelope.msg_id, item.frame.message_id,
                )
        self.metrics.observe_acks(latencies)
        if self.recorder is not None:
            self.recorder.record(acked_ids, time.time())


def _message_body(item: Pending) -> dict:
    """The envelope as a dict of its fields. Envelope.to_dict() (dataclasses.asdict) deep-copies
    the payload, which was the listener's largest CPU cost at 2,000 msgs/s; the publisher only
    serialises the dict, so a shallow copy of the frozen envelope's fields is equivalent."""
    return dict(vars(item.envelope))


def _ids(items: list[Pending]) -> str:
    return ",".join(p.envelope.msg_id for p in items)
