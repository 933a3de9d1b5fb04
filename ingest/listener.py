"""The Stream listener: register → connect → read; pings, watchdogs, reconnect with back-off + jitter; health."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import websocket

from ingest.ackrecord import AckRecorder
from ingest.backoff import Backoff
from ingest.buffer import AckTarget, EnvelopeBuffer
from ingest.config import IngestConfig
from ingest.connection import AuthFailed, RegistrationError, StreamConnection, open_socket, register
from ingest.dispatch import FrameRouter
from ingest.handoff import HandOff
from ingest.health import Health, HealthServer
from ingest.heartbeat import ReadinessHeartbeat
from ingest.journal import Journal
from ingest.metrics import IngestMetrics
from ingest.publish import BrokerPublisher

log = logging.getLogger(__name__)


class Listener:
    """Owns the Stream sockets. Only `run()`'s thread connects, so there is one connect in flight.

    Readers report to it (socket closed, server said `disconnect`) by waking it up; it decides
    when to dial again. The hand-off thread makes envelopes durable and ACKs them; if it dies,
    `run()` returns with `exit_code` 1 so the process's supervisor starts a fresh one.
    """

    def __init__(
        self,
        config: IngestConfig,
        metrics: IngestMetrics | None = None,
        publisher: BrokerPublisher | None = None,
        recorder: AckRecorder | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or IngestMetrics()
        self.buffer = EnvelopeBuffer(config.buffer_max)
        self.journal = self._open_journal(config)
        self.exit_code = 0
        self.handoff = HandOff(
            self.buffer,
            publisher or BrokerPublisher(config.broker_url, confirm_timeout=config.confirm_timeout_seconds),
            self.metrics,
            recorder
            if recorder is not None
            else AckRecorder(config.redis_url, config.redis_key_prefix, config.acked_ttl_seconds),
            batch_max=config.batch_max,
            backoff=Backoff(config.backoff_initial_seconds, config.backoff_max_seconds),
            journal=self.journal,
            on_failure=self._on_handoff_failure,
        )
        self.router = FrameRouter(config.tenant_id, self.buffer, self.metrics, self._on_disconnect,
                                  overflow=self.handoff.overflow, max_frame_bytes=config.max_frame_bytes)
        self.health = HealthServer(self.metrics.registry, self.check_health)
        self.heartbeat = ReadinessHeartbeat(config.redis_url, config.redis_key_prefix, self.check_health,
                                            config.heartbeat_seconds)
        self.metrics.handoff_alive.set_function(lambda: 1.0 if self.handoff.alive else 0.0)
        self.backoff = Backoff(config.backoff_initial_seconds, config.backoff_max_seconds)
        self.stopped = threading.Event()
        self.metrics_port: int | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[StreamConnection] = []
        self._active: StreamConnection | None = None
        self._next_connect_at = 0.0
        self._reconnect_reason = ""
        self._ever_connected = False
        self._auth_failing = False
        self._last_stats = time.monotonic()
        self._http = httpx.Client(timeout=config.http_timeout_seconds)

    # ---- lifecycle -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask `run()` to shut down (signal handlers call this)."""
        self._stop.set()
        self._wake.set()

    @staticmethod
    def _open_journal(config: IngestConfig) -> Journal | None:
        if not config.journal_dir:
            log.warning("INGEST_JOURNAL_DIR is empty: while the broker is down pushes wait un-ACKed in "
                        "memory and are lost unless DingTalk pushes them again")
            return None
        journal = Journal(config.journal_dir, config.journal_max_bytes).open()
        if journal.depth:
            log.info("journal %s holds %d envelopes from an earlier run (oldest %.0fs old); replaying them "
                     "once the broker answers", config.journal_dir, journal.depth, journal.age_seconds())
        return journal

    def _on_handoff_failure(self, exc: BaseException) -> None:
        """The hand-off thread died (its thread): stop, so the supervisor restarts the process."""
        self.exit_code = 1
        self.request_stop()

    def check_health(self) -> Health:
        """What /livez and /readyz answer."""
        live = self.handoff.alive and self.exit_code == 0
        connected = self._active is not None
        journal = self.journal
        journal_full = journal is not None and journal.full_for(0)
        detail = {
            "handoff": "alive" if self.handoff.alive else "dead",
            "stream": "connected" if connected else "connecting",
            "broker": {True: "up", False: "down", None: "connecting"}[self.handoff.broker_up],
            "buffer": len(self.buffer),
            "journal": None if journal is None else {
                "depth": journal.depth, "bytes": journal.size_bytes, "max_bytes": journal.max_bytes,
                "age_seconds": round(journal.age_seconds(), 3), "full": journal_full,
            },
        }
        return Health(live=live, ready=live and connected and not journal_full, detail=detail)

    def run(self) -> None:
        """Serve until `request_stop()`; then make what is buffered durable, ACK it, close."""
        if self.journal is not None:
            self.metrics.watch_journal(self.journal)
        try:
            self.metrics_port = self.health.serve(self.config.metrics_port)
        except OSError as exc:  # metrics are secondary: never lose messages over a busy port
            log.error("cannot serve metrics on port %d (%s); INGEST_METRICS_PORT=0 disables them",
                      self.config.metrics_port, exc)
        if self.handoff.recorder is not None:
            self.handoff.recorder.start()
        self.handoff.start()
        self.heartbeat.start()
        log.info(
            "listener starting: gateway %s, broker %s, buffer %d",
            self.config.openapi_endpoint, _redact(self.config.broker_url), self.config.buffer_max,
        )
        try:
            while not self._stop.is_set():
                self._wake.clear()  # before looking at the state, so no wake-up is missed
                if not self.handoff.alive:
                    self._handoff_gone()
                    break
                if self._active is None and time.monotonic() >= self._next_connect_at:
                    self._connect()
                self._tick()
                self._wake.wait(self._tick_seconds())
        finally:
            self._shutdown()

    def _handoff_gone(self) -> None:
        if self.exit_code == 0:  # died without passing through its own handler
            log.critical("the hand-off thread is gone; stopping so the supervisor restarts the listener")
            self.exit_code = 1

    def _shutdown(self) -> None:
        self.heartbeat.stop()  # not ready from the first moment of shutdown
        # The buffer closes now: pushes read from here on go to the journal (then ACKed) until the
        # sockets are closed.
        left = self.handoff.stop(self.config.shutdown_grace_seconds)
        if left:
            log.warning(
                "shutdown: %d pushes left un-ACKed (%s) msgIds=%s", len(left),
                "the journal is full" if self.journal is not None else "no journal",
                ",".join(p.envelope.msg_id for p in left),
            )
            self.metrics.not_acked.labels("shutdown").inc(len(left))
        with self._lock:
            conns, self._conns, self._active = list(self._conns), [], None
        for conn in conns:
            conn.close()
        if self.handoff.recorder is not None:
            self.handoff.recorder.stop()
        if self.journal is not None:
            if self.journal.depth:
                log.info("shutdown: %d envelopes stay journaled in %s for the next start",
                         self.journal.depth, self.config.journal_dir)
            self.journal.close()
        self._http.close()
        self.health.stop()
        self._log_stats(force=True)
        log.info("listener stopped" if self.exit_code == 0 else "listener stopped after a fatal error")
        self.stopped.set()

    # ---- connecting ------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            endpoint, ticket = register(self.config, self._http)
            ws = open_socket(endpoint, ticket, self.config.http_timeout_seconds)
        except AuthFailed as exc:
            self._auth_failed(exc)
            return
        except (RegistrationError, websocket.WebSocketException, OSError) as exc:
            self._connect_failed(exc)
            return
        except Exception as exc:  # e.g. a malformed endpoint in the ticket: retry, never die
            log.exception("unexpected error while connecting")
            self._connect_failed(exc)
            return
        if self._auth_failing:
            log.info("DingTalk accepted the credentials again")
            self._auth_failing = False
        conn = StreamConnection(ws, self.router.handle, self._on_closed)
        with self._lock:
            self._conns.append(conn)
            self._active = conn
            reason = self._reconnect_reason or "closed"
        self.metrics.set_connections(len(self._conns))
        if self._ever_connected:
            self.metrics.reconnects.labels(reason).inc()
            log.info("%s: connected to %s (reconnect after %s)", conn.name, endpoint, reason)
        else:
            log.info("%s: connected to %s", conn.name, endpoint)
        self._ever_connected = True
        conn.start()

    def _connect_failed(self, exc: Exception) -> None:
        delay = self.backoff.next_delay()
        self._next_connect_at = time.monotonic() + delay
        log.warning("cannot open a Stream connection (%s); retrying in %.1fs", exc, delay)

    def _auth_failed(self, exc: AuthFailed) -> None:
        self._next_connect_at = time.monotonic() + self.config.auth_retry_seconds
        if not self._auth_failing:
            log.error(
                "DingTalk rejected the app credentials (%s). Fix DINGTALK_CLIENT_ID / "
                "DINGTALK_CLIENT_SECRET (check for stray whitespace); retrying every %.0fs",
                exc, self.config.auth_retry_seconds,
            )
            self._auth_failing = True
        else:
            log.warning("credentials still rejected (%s); next try in %.0fs", exc, self.config.auth_retry_seconds)

    # ---- reader callbacks (reader threads) ----------------------------------------------------

    def _on_disconnect(self, target: AckTarget) -> None:
        """Server announced it will close `target`: dial a new socket now, let the old one drain."""
        with self._lock:
            conn = next((c for c in self._conns if c is target), None)
            if conn is None or conn.draining:
                return
            conn.draining_since = time.monotonic()
            if conn is self._active:
                self._active = None
                self._next_connect_at = 0.0
                self._reconnect_reason = "disconnect"
        self._wake.set()

    def _on_closed(self, conn: StreamConnection, reason: str) -> None:
        now = time.monotonic()
        lived = now - conn.opened_at
        delay = None
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
            if conn is self._active:
                self._active = None
                if not self._stop.is_set():
                    # Set together with _active, or the supervisor could redial with no back-off.
                    if lived >= self.config.healthy_reset_seconds:
                        self.backoff.reset()
                    delay = self.backoff.next_delay()
                    self._next_connect_at = now + delay
                    self._reconnect_reason = _reconnect_label(reason)
        self.metrics.set_connections(len(self._conns))
        if delay is None:
            log.info("%s: closed (%s)", conn.name, reason)
            return
        log.warning("%s: lost after %.1fs (%s); reconnecting in %.1fs", conn.name, lived, reason, delay)
        self._wake.set()

    # ---- periodic work -------------------------------------------------------------------------

    def _tick_seconds(self) -> float:
        c = self.config
        return max(0.05, min(1.0, c.ping_interval_seconds / 4, c.watchdog_seconds / 4, c.pong_timeout_seconds / 4))

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            if not self._watch(conn, now):
                continue
            if conn.draining and now - (conn.draining_since or now) > self.config.drain_grace_seconds:
                conn.abort("drain grace period over")
            elif now - conn.last_ping_sent >= self.config.ping_interval_seconds:
                conn.ping()
        active = self._active
        if active is not None and now - active.opened_at >= self.config.healthy_reset_seconds:
            self.backoff.reset()
        self.metrics.buffer_size.set(len(self.buffer))
        self._log_stats()

    def _watch(self, conn: StreamConnection, now: float) -> bool:
        """The two watchdogs; False when `conn` was found dead (and aborted).

        Application level: no push and no SYSTEM frame for INGEST_WATCHDOG_SECONDS (the server pings
        every ~30 s) means the server has given the socket up, whatever the TCP stack still answers.
        Transport level: a WebSocket ping unanswered for INGEST_PONG_TIMEOUT_SECONDS (half-open TCP).
        """
        silent = now - conn.last_frame_at
        if silent > self.config.watchdog_seconds:
            log.warning(
                "%s: no push and no SYSTEM frame for %.1fs (pongs do not count); closing the zombie socket",
                conn.name, silent,
            )
            conn.abort(f"watchdog: no frame for {silent:.1f}s")
            return False
        unanswered = conn.ping_unanswered_since
        if unanswered is not None and now - unanswered > self.config.pong_timeout_seconds:
            log.warning("%s: WebSocket ping unanswered for %.1fs; closing the dead socket", conn.name, now - unanswered)
            conn.abort(f"pong timeout: {now - unanswered:.1f}s")
            return False
        return True

    def _log_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_stats < self.config.stats_interval_seconds:
            return
        self._last_stats = now
        s = self.metrics.window.snapshot()
        if s.count:
            log.info(
                "ack latency p50=%.1fms p99=%.1fms max=%.1fms over %d acks; buffer=%d connections=%d",
                s.p50_ms, s.p99_ms, s.max_ms, s.count, len(self.buffer), len(self._conns),
            )

    # ---- introspection for tests and the benchmark -----------------------------------------

    @property
    def connections(self) -> list[StreamConnection]:
        with self._lock:
            return list(self._conns)

    @property
    def active(self) -> StreamConnection | None:
        return self._active


def _reconnect_label(reason: str) -> str:
    """The reconnects_total label of a close reason (bounded values)."""
    if reason.startswith("watchdog"):
        return "watchdog"
    if reason.startswith("pong timeout"):
        return "pong_timeout"
    return "closed"


def _redact(url: str) -> str:
    """Broker URL without its password, for the start-up line."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
