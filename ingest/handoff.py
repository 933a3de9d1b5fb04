"""The writer thread: make each waiting batch durable (broker, else the journal), then ACK it on its own socket."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.ackrecord import AckRecorder
from ingest.backoff import Backoff
from ingest.buffer import EnvelopeBuffer, Pending
from ingest.journal import Journal, JournalEntry
from ingest.metrics import IngestMetrics
from ingest.protocol import ack_for
from ingest.publish import BrokerPublisher, BrokerUnavailable, UnencodableEnvelope
from ingest.spool import Spool, message_body

log = logging.getLogger(__name__)

IDLE_WAIT_SECONDS = 0.5
# While batches await confirms the thread waits on the broker's socket this long, then looks
# for new pushes: the most a push waits in the buffer behind an outstanding batch.
POLL_SECONDS = 0.001
# Journaled batches on their way to the broker at once (each up to batch_max envelopes).
REPLAY_IN_FLIGHT = 4
JOURNAL_FULL_PAUSE_SECONDS = 0.05


@dataclass
class _Flight:
    """A batch written to the broker, awaiting its confirms: pushes to ACK, or journal rows to drop."""

    sent_at: float
    items: list[Pending] = field(default_factory=list)
    entries: list[JournalEntry] = field(default_factory=list)


class HandOff:
    """Takes batches from the buffer; publish; ACK each batch once the broker confirmed it.

    Batches are written as they form and confirmed asynchronously: the thread waits on the
    broker's socket while batches are outstanding and on the buffer when none are.

    When the broker cannot take them (down, or not confirming in time) batches go to the journal
    instead, are ACKed once it has them on disk, and are replayed in order when the broker answers
    again; until the journal is empty new pushes queue behind them in it. Without a journal (tests)
    they wait un-ACKed in the buffer. If this thread dies, `on_failure` is told: the process must
    not live on answering pings while nothing is ACKed any more.
    """

    def __init__(
        self,
        buffer: EnvelopeBuffer,
        publisher: BrokerPublisher,
        metrics: IngestMetrics,
        recorder: AckRecorder | None,
        batch_max: int = 200,
        backoff: Backoff | None = None,
        journal: Journal | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.buffer = buffer
        self.publisher = publisher
        self.metrics = metrics
        self.recorder = recorder
        self.batch_max = batch_max
        self.backoff = backoff or Backoff()
        self.spool = Spool(journal, metrics, self._ack) if journal is not None else None
        self.on_failure = on_failure
        self.broker_up: bool | None = None  # None until the first connect attempt
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._stop_deadline = 0.0
        self._retry_at = 0.0
        self._isolate = 0  # after an unexpected error, publish one at a time to find the culprit
        self._in_flight: deque[_Flight] = deque()  # oldest first
        self._thread = threading.Thread(target=self._run, name="ingest-handoff", daemon=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace_seconds: float) -> list[Pending]:
        """Keep making buffered envelopes durable for up to `grace_seconds`, then stop.

        What is still buffered then goes to the journal and is ACKed; returns what could not be
        kept (no journal, or it is full): those pushes stay un-ACKed.
        """
        self._stop_deadline = time.monotonic() + grace_seconds
        self._stop.set()
        self.buffer.close()
        self._thread.join(grace_seconds + self.publisher.confirm_timeout + 1.0)
        self.publisher.close()
        left = self.buffer.drain_queued()
        if left and self.spool is not None:
            full, bad = self.spool.keep(left)
            if len(left) > len(full) + len(bad):
                log.info("shutdown: %d envelopes the broker did not confirm in time are journaled and ACKed",
                         len(left) - len(full) - len(bad))
            left = full + bad
        return left

    def overflow(self, item: Pending) -> bool:
        """A push the buffer cannot hold (full, or closed at shutdown): journal and ACK it at once
        (called on the socket's reader thread). False when it could not be kept."""
        if self.spool is None:
            return False
        full, bad = self.spool.keep([item])
        return not (full or bad)

    # ---- the loop ----------------------------------------------------------------------------

    def _stopping_done(self) -> bool:
        if not self._stop.is_set():
            return False
        return len(self.buffer) == 0 or time.monotonic() >= self._stop_deadline

    def _run(self) -> None:
        try:
            while not self._stopping_done():
                self._step()
        except BaseException as exc:
            self.failure = exc
            log.critical("the hand-off thread died; nothing more can be ACKed", exc_info=True)
            if self.on_failure is not None:
                self.on_failure(exc)
        finally:
            # Stopping with batches unconfirmed: they are not durable, so they go back to the buffer.
            self._give_back()

    def _step(self) -> None:
        if not self.publisher.connected and not self._connect():
            self._spool_waiting(max(0.0, min(IDLE_WAIT_SECONDS, self._retry_at - time.monotonic())))
            return
        if self._in_flight:
            # Wait on the broker's socket, not the buffer: confirms free the oldest batches.
            self._collect(0.0 if self.buffer.queued else POLL_SECONDS)
        if self.spool is not None and self.spool.active:
            self._spool_waiting(0.0)  # new pushes queue behind the journaled ones
            self._replay()
            if not self._in_flight and not self.spool.active:
                return
            if not self._in_flight:
                time.sleep(POLL_SECONDS)
            return
        busy = bool(self._in_flight)
        batch = self.buffer.take(1 if self._isolate else self.batch_max,
                                 timeout=0.0 if busy else IDLE_WAIT_SECONDS)
        if batch:
            self._send(batch)
        elif not busy:
            self._idle()

    def _connect(self) -> bool:
        if self._retry_at > time.monotonic():
            return False
        try:
            self.publisher.connect()
        except BrokerUnavailable as exc:
            self._broker_down(exc)
            return False
        if self.broker_up is False:
            depth = self.spool.journal.depth if self.spool is not None else 0
            log.info("broker reachable again; %d envelopes buffered, %d journaled", len(self.buffer), depth)
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
        if self.spool is not None:
            self.spool.rewind()
        if self.broker_up is not False:
            self.metrics.broker_outages.inc()
            where = ("journaling what arrives and ACKing it" if self.spool is not None
                     else f"holding up to {self.buffer.capacity} envelopes un-ACKed")
            log.warning("broker unreachable (%s): %s; retrying in %.1fs", exc, where, delay)
        else:
            log.debug("broker still unreachable (%s); retrying in %.1fs", exc, delay)
        self.broker_up = False

    # ---- the journal side ----------------------------------------------------------------------

    def _spool_waiting(self, timeout: float) -> None:
        """Move what waits in the buffer to the journal and ACK it (without a journal: just wait)."""
        if self.spool is None:
            if timeout <= 0:
                return
            if self._stop.is_set():
                time.sleep(min(timeout, 0.1))
            else:  # interruptible: a stop request ends the back-off sleep
                self._stop.wait(timeout)
            return
        batch = self.buffer.take(self.batch_max, timeout=timeout)
        if not batch:
            if self._stop.is_set() and timeout > 0:
                time.sleep(min(timeout, 0.05))  # the closed buffer does not wait
            return
        full, bad = self.spool.keep(batch)
        for item in bad:
            self._leave_un_acked(item)
        self.buffer.settle(len(batch) - len(full))
        if full:
            self.buffer.put_back(full)  # still un-ACKed; retried until the journal has room
            time.sleep(JOURNAL_FULL_PAUSE_SECONDS)
        self.metrics.buffer_size.set(len(self.buffer))

    def _replay(self) -> None:
        assert self.spool is not None
        if sum(1 for f in self._in_flight if f.entries) >= REPLAY_IN_FLIGHT:
            return
        entries, bodies = self.spool.next_batch(self.batch_max)
        if not entries:
            return
        started = time.monotonic()
        try:
            self.publisher.send(bodies)
        except UnencodableEnvelope as exc:
            self.spool.unencodable(entries[exc.index], str(exc))
            self.spool.rewind()  # nothing of the batch was written: read it again without that one
        except BrokerUnavailable as exc:
            self._give_back()
            self._broker_down(exc)
        else:
            self._in_flight.append(_Flight(started, entries=entries))

    # ---- the broker side -----------------------------------------------------------------------

    def _send(self, batch: list[Pending]) -> None:
        """Write `batch` to the broker (no waiting); it joins the batches awaiting confirms."""
        started = time.monotonic()
        try:
            self.publisher.send([message_body(p) for p in batch])
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
                self.buffer.settle(1)
                self._isolate = max(0, self._isolate - 1)
            else:
                self._give_back(batch)
                self._isolate = len(batch)
        else:
            self._in_flight.append(_Flight(started, items=batch))
            if self._isolate:
                self._isolate = max(0, self._isolate - len(batch))

    def _drop_unencodable(self, batch: list[Pending], exc: UnencodableEnvelope) -> None:
        """Leave the envelope that cannot be serialised un-ACKed; the rest goes out again."""
        self._leave_un_acked(batch[exc.index], exc)
        self.buffer.settle(1)
        rest = batch[: exc.index] + batch[exc.index + 1 :]
        if rest:
            self.buffer.put_back(rest)

    def _leave_un_acked(self, item: Pending, exc: Exception | None = None) -> None:
        # Nothing can make it durable; DingTalk may re-push it (then it fails the same way).
        self.metrics.not_acked.labels("publish_error").inc()
        log.error("envelope cannot be published%s; left un-ACKed msgId=%s messageId=%s",
                  f" ({exc})" if exc else "", item.envelope.msg_id, item.frame.message_id, extra=_fields(item))

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
            if self.spool is not None:
                self.spool.rewind()
            return
        now = time.monotonic()
        for durable in outcomes:
            flight = self._in_flight.popleft()
            self.metrics.confirm_latency.observe(now - flight.sent_at)
            self.backoff.reset()
            if flight.entries:
                assert self.spool is not None
                self.spool.confirmed(flight.entries, durable)
                continue
            confirmed = [p for p, ok in zip(flight.items, durable, strict=True) if ok]
            refused = [p for p, ok in zip(flight.items, durable, strict=True) if not ok]
            self.metrics.published.inc(len(confirmed))
            self._ack(confirmed)
            if refused:
                # A nack or a return means the broker did not take responsibility: publish those again.
                log.warning("broker refused %d envelopes, publishing again msgIds=%s", len(refused), _ids(refused))
                self.buffer.put_back(refused)
            self.buffer.settle(len(confirmed))
        if outcomes:
            self.metrics.buffer_size.set(len(self.buffer))

    def _give_back(self, batch: list[Pending] | None = None) -> None:
        """Batches written but not confirmed (then `batch`) go back to the buffer's front, in order;
        journal rows in flight simply stay in the journal."""
        items = [p for flight in self._in_flight for p in flight.items] + (batch or [])
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
                        log.debug("acked msgId=%s in %.1f ms", item.envelope.msg_id, latencies[-1] * 1000,
                                  extra=_fields(item))
                continue
            for item in items:
                # Durable but its socket is gone: the redelivery is deduplicated downstream by msgId.
                self.metrics.acks_skipped.inc()
                log.info(
                    "durable but socket %s closed; ACK skipped msgId=%s messageId=%s",
                    target.name, item.envelope.msg_id, item.frame.message_id, extra=_fields(item),
                )
        self.metrics.observe_acks(latencies)
        if self.recorder is not None:
            self.recorder.record(acked_ids, time.time())


def _ids(items: list[Pending]) -> str:
    return ",".join(p.envelope.msg_id for p in items)


def _fields(item: Pending) -> dict[str, str]:
    """The message fields of a line about one envelope (conf/logs.py), without a contextvar per
    envelope on the batch path."""
    envelope = item.envelope
    return {"msg_id": envelope.msg_id or "-", "stage": "handoff",
            "conversation": envelope.conversation_id or "-", "tenant": envelope.tenant_id or "-"}
