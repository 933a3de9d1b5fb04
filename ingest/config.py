"""Settings → frozen IngestConfig: the knobs the Stream listener needs, nothing more."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from conf.settings import Settings, get_settings


@dataclass(frozen=True)
class IngestConfig:
    """What `python -m ingest` runs with; built from Settings so the environment is read once."""

    client_id: str
    client_secret: str
    openapi_endpoint: str
    broker_url: str
    redis_url: str
    redis_key_prefix: str
    tenant_id: str
    http_timeout_seconds: float = 10.0
    buffer_max: int = 1000
    batch_max: int = 200
    ping_interval_seconds: float = 30.0
    # DingTalk sends a SYSTEM ping every ~30 s: 50 s of silence tolerates one late ping and still
    # finds a zombie socket within a minute.
    watchdog_seconds: float = 50.0
    pong_timeout_seconds: float = 10.0
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    healthy_reset_seconds: float = 60.0
    auth_retry_seconds: float = 300.0
    metrics_port: int = 9108
    # The readiness key in Redis the web's /readyz reads (ingest/heartbeat.py); 0 = not written.
    heartbeat_seconds: float = 5.0
    # Empty: no journal (pushes the broker cannot take wait un-ACKed in memory; tests only).
    journal_dir: str = "var/ingest-journal"
    journal_max_bytes: int = 512 * 1024 * 1024
    # Not in Settings on purpose: they only make tests and the benchmark faster.
    drain_grace_seconds: float = 15.0
    confirm_timeout_seconds: float = 5.0
    shutdown_grace_seconds: float = 5.0
    stats_interval_seconds: float = 60.0
    acked_ttl_seconds: int = 86400
    max_frame_bytes: int = 256 * 1024

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://"))

    @property
    def registration_url(self) -> str:
        return f"{self.openapi_endpoint.rstrip('/')}/v1.0/gateway/connections/open"

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> IngestConfig:
        s = settings or get_settings()
        config = cls(
            client_id=s.dingtalk_client_id,
            client_secret=s.dingtalk_client_secret,
            openapi_endpoint=s.dingtalk_openapi_endpoint,
            broker_url=s.celery_broker_url,
            redis_url=s.redis_url,
            redis_key_prefix=s.redis_key_prefix,
            tenant_id=s.tenant_id,
            http_timeout_seconds=s.http_timeout_seconds,
            buffer_max=s.ingest_buffer_max,
            batch_max=s.ingest_batch_max,
            ping_interval_seconds=s.ingest_ping_interval_seconds,
            watchdog_seconds=s.ingest_watchdog_seconds,
            pong_timeout_seconds=s.ingest_pong_timeout_seconds,
            backoff_max_seconds=s.ingest_backoff_max_seconds,
            healthy_reset_seconds=s.ingest_healthy_reset_seconds,
            auth_retry_seconds=s.ingest_auth_retry_seconds,
            metrics_port=s.ingest_metrics_port,
            heartbeat_seconds=s.ingest_heartbeat_seconds,
            journal_dir=s.ingest_journal_dir,
            journal_max_bytes=s.ingest_journal_max_bytes,
            max_frame_bytes=s.ingest_max_frame_bytes,
        )
        return replace(config, **overrides) if overrides else config
