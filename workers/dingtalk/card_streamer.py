"""Stream an answer's text chunks into a DingTalk AI card: create once, coalesced updates, always finalized."""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from skills.api import SkillError
from workers.dingtalk.card_client import CardClient, CardTarget
from workers.dingtalk.card_text import CARD_MAX_BYTES, fit_card, note
from workers.errors import CardError, CardUnavailable

log = logging.getLogger(__name__)

__all__ = [
    "CardStreamer", "CardTarget", "StreamResult", "fit_card",
    "out_track_id_for",
]

# AI-card template status variable (protocol §6.4): 1 processing, 2 inputting, 3 finished, 5 failed.
FLOW_PROCESSING, FLOW_INPUTTING, FLOW_FINISHED, FLOW_FAILED = "1", "2", "3", "5"


def out_track_id_for(msg_id: str) -> str:
    """The card id for a message: the same msgId (a retried task) reuses the same card."""
    return "dtbot-" + hashlib.sha256(msg_id.encode()).hexdigest()[:32]


@dataclass
class StreamResult:
    """What happened to one streamed answer; `overflow` (or everything if not finalized) still needs sending."""

    out_track_id: str
    status: str  # finished | stopped | failed
    text: str
    shown: str
    overflow: str
    finalized: bool
    updates: int
    error: str
    first_visible_s: float | None
    elapsed_s: float


_END = object()


class _Pump:
    """Reads the chunk iterator on a helper thread, so the streamer keeps watching the clock and Stop."""

    def __init__(self, chunks: Iterable[str]) -> None:
        self.chunks = chunks
        self.items: queue.Queue[Any] = queue.Queue()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="card-pump", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for chunk in self.chunks:
                if self.stopped:
                    return
                self.items.put(chunk)
            self.items.put(_END)
        except BaseException as exc:  # handed to the streamer thread, which finalizes the card
            self.items.put(exc)

    def get(self, timeout: float) -> list[Any]:
        """Everything available, waiting up to `timeout` s for the first item."""
        try:
            got = [self.items.get(timeout=max(0.0, timeout))]
        except queue.Empty:
            return []
        while True:
            try:
                got.append(self.items.get_nowait())
            except queue.Empty:
                return got

    def stop(self) -> None:
        """Stop reading; close the source so the LLM stops generating too."""
        self.stopped = True
        close = getattr(self.chunks, "close", None)
        if callable(close):
            try:
                close()
            except ValueError:
                pass  # a plain generator running on the pump thread cannot be closed from here


class CardStreamer:
    """Turns an iterator of text chunks into one AI card (protocol §6.4).

    Reading starts at once; the card is created when the rate budget allows, already holding
    the text read so far (the first visible text costs no extra call). Then full-text streaming
    updates at most one per `interval` s and only when a budget token is free (busy periods
    coalesce more), and always a final update with isFinalize — also when the iterator raises
    (isError) or the Stop flag is set ("(stopped)"). `set_flow_status` adds PUT
    /v1.0/card/instances with flowStatus 3/5 at the end, for templates that show that variable
    (the Python SDK's flow); it costs one more call of the card budget per answer.
    """

    def __init__(
        self,
        client: CardClient,
        template_id: str,
        *,
        content_key: str = "content",
        interval: float = 0.3,
        max_bytes: int = CARD_MAX_BYTES,
        cancel_check: Callable[[str], bool] | None = None,
        poll: float = 0.1,
        set_flow_status: bool = False,
        update_timeout: float = 3.0,
        create_budget_timeout: float = 10.0,
        first_update_max_wait: float = 5.0,
        finalize_deadline: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.template_id = template_id
        self.content_key = content_key
        self.interval = interval
        self.max_bytes = max_bytes
        self.cancel_check = cancel_check
        self.poll = poll
        self.set_flow_status = set_flow_status
        self.update_timeout = update_timeout
        self.create_budget_timeout = create_budget_timeout
        self.first_update_max_wait = first_update_max_wait
        self.finalize_deadline = finalize_deadline
        self.clock = clock

    def stream(
        self, msg_id: str, target: CardTarget, chunks: Iterable[str] | Iterator[str], locale: str = "zh-CN",
        deadline: float | None = None,
    ) -> StreamResult:
        """Create the card, stream `chunks` into it, finalize.

        Raises CardUnavailable when no card can be made; its `remaining` then yields the whole
        answer (already-read text first) for a markdown reply. `deadline` (on `clock`) bounds the
        answer: past it the source is closed and the card finalized as failed ("took too long").
        """
        started = self.clock()
        out_track_id = out_track_id_for(msg_id)
        if not self.template_id:
            exc = CardUnavailable("no AI card template configured (DINGTALK_AI_CARD_TEMPLATE_ID)")
            exc.remaining = iter(chunks)
            raise exc
        run = _Run(self, out_track_id, msg_id, locale, started, deadline)
        pump = _Pump(chunks)
        try:
            run.create(pump, target)
        except CardUnavailable as exc:
            exc.remaining = run.remaining(pump)
            raise
        except BaseException:
            pump.stop()
            raise
        try:
            run.consume(pump)
        except BaseException as exc:
            # The worker itself is failing (soft time limit, shutdown): the card still gets finalized.
            pump.stop()
            run.status, run.error = "failed", note("failed", locale)
            log.error("card stream aborted msg_id=%s: %r", msg_id, exc)
            run.finalize()
            raise
        return run.finalize()


class _Run:
    """The state of one card stream (one thread); kept apart so CardStreamer stays reusable."""

    def __init__(self, streamer: CardStreamer, out_track_id: str, msg_id: str, locale: str, started: float,
                 deadline: float | None = None):
        self.s = streamer
        self.deadline = deadline
        self.out_track_id = out_track_id
        self.msg_id = msg_id
        self.locale = locale
        self.started = started
        self.text = ""
        self.shown = ""
        self.status = "finished"
        self.error = ""
        self.ended = False  # the iterator is exhausted (or failed)
        self.failure: BaseException | None = None
        self.updates = 0
        self.first_visible: float | None = None
        self.shown_at: float | None = None
        self.streaming_ok = True  # False after a permission error: only the final data update is tried
        self.booked_at: float | None = None  # a budget slot booked for the first visible update

    def _take(self, items: list[Any]) -> None:
        for item in items:
            if item is _END:
                self.ended = True
            elif isinstance(item, BaseException):
                self.ended, self.failure, self.status = True, item, "failed"
                self.error = getattr(item, "user_message", "") if isinstance(item, SkillError) else ""
                self.error = self.error or note("failed", self.locale)
                log.warning("answer stream failed msg_id=%s: %r", self.msg_id, item)
            else:
                self.text += item

    def create(self, pump: _Pump, target: CardTarget) -> None:
        s = self.s
        if not s.client.wait_budget(s.create_budget_timeout):
            raise CardUnavailable(f"no card rate budget within {s.create_budget_timeout}s")
        self._take(pump.get(0))
        content = self._view() if not self.failure else ""
        params = {"flowStatus": FLOW_INPUTTING if content else FLOW_PROCESSING, s.content_key: content}
        s.client.create_and_deliver(self.out_track_id, s.template_id, target, params, budget_taken=True)
        if content:
            self._shown(content, counted=False)

    def remaining(self, pump: _Pump) -> Iterator[str]:
        """The whole answer after a failed card creation: what was read, then the rest."""
        if self.text:
            yield self.text
        while not self.ended:
            for item in pump.get(1.0):
                if item is _END:
                    self.ended = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        if self.failure is not None:
            raise self.failure

    def consume(self, pump: _Pump) -> None:
        s = self.s
        # Text not on the card yet goes out at once; later text is coalesced (the create counts).
        next_cancel_check = s.clock()
        next_flush = self.shown_at + s.interval if self.shown_at is not None else next_cancel_check
        while not self.ended:
            now = s.clock()
            pending = self.streaming_ok and self._view() != self.shown
            wait = min(s.poll, max(0.0, next_flush - now)) if pending else s.poll
            self._take(pump.get(wait))
            if self.ended:
                return
            now = s.clock()
            if self.deadline is not None and now >= self.deadline:
                # A source that keeps the answer open too long (a skill without its own timeout).
                self.status, self.error = "failed", note("timeout", self.locale)
                log.warning("answer stream over its deadline msg_id=%s", self.msg_id)
                pump.stop()
                return
            if s.cancel_check is not None and now >= next_cancel_check:
                next_cancel_check = now + s.poll
                if s.cancel_check(self.out_track_id):
                    self.status = "stopped"
                    pump.stop()
                    return
            if now >= next_flush and self.streaming_ok and self._view() != self.shown:
                next_flush = self._flush(now)

    def _view(self, tail: str = "") -> str:
        return fit_card(self.text, self.s.max_bytes, tail, note("more", self.locale))[0]

    def _flush(self, now: float) -> float:
        """One intermediate update if the budget allows; returns when the next may go."""
        s = self.s
        if self.booked_at is not None:
            self.booked_at = None  # our booked slot has come
        elif not self.shown:
            # Nothing visible yet: queue for a slot like creates and finals do, instead of
            # competing for a free one with cards that already show text.
            booked, wait = s.client.reserve_budget(s.first_update_max_wait)
            if not booked:
                return now + max(wait, s.poll)
            if wait > 0:
                self.booked_at = now + wait
                return self.booked_at
        else:
            wait = s.client.take_budget()
            if wait > 0:
                # Others hold the budget: look again a little later, without hammering Redis.
                return now + max(wait, s.poll)
        content = self._view()
        try:
            s.client.stream(
                self.out_track_id, s.content_key, content, budget_taken=True,
                budget_timeout=0.5, deadline=1.0, timeout=s.update_timeout,
            )
        except CardError as exc:
            # Skipped, not lost: the next update carries the full text again.
            log.info("card update skipped msg_id=%s: %s", self.msg_id, exc)
            if exc.denied:
                self.streaming_ok = False
            return s.clock() + s.interval
        self._shown(content)
        return now + s.interval

    def _shown(self, content: str, counted: bool = True) -> None:
        self.shown = content
        self.shown_at = self.s.clock()
        self.updates += counted
        if self.first_visible is None and content:
            self.first_visible = self.s.clock() - self.started

    def finalize(self) -> StreamResult:
        s = self.s
        tail = ""
        if self.status == "stopped":
            tail = note("stopped", self.locale)
        elif self.status == "failed":
            tail = "\n\n⚠️ " + self.error
        content, overflow = fit_card(self.text, s.max_bytes, tail, note("more", self.locale))
        finalized = False
        if self.streaming_ok:
            try:
                s.client.stream(
                    self.out_track_id, s.content_key, content, finalize=True,
                    error=self.status == "failed", deadline=s.finalize_deadline,
                    budget_timeout=s.finalize_deadline,
                )
                self._shown(content)
                finalized = True
            except CardError as exc:
                log.error("card finalize failed msg_id=%s: %s", self.msg_id, exc)
        if s.set_flow_status or not finalized:
            # Also the way out when streaming itself is refused: a plain data update ends the card.
            flow = FLOW_FAILED if self.status == "failed" else FLOW_FINISHED
            try:
                s.client.update(
                    self.out_track_id, {"flowStatus": flow, s.content_key: content},
                    deadline=s.finalize_deadline, budget_timeout=s.finalize_deadline,
                )
                finalized = True
            except CardError as exc:
                log.error("card status update failed msg_id=%s: %s", self.msg_id, exc)
        return StreamResult(
            out_track_id=self.out_track_id,
            status=self.status,
            text=self.text,
            shown=content,
            overflow=overflow,
            finalized=finalized,
            updates=self.updates,
            error=self.error,
            first_visible_s=self.first_visible,
            elapsed_s=s.clock() - self.started,
        )
