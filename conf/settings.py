"""Environment → frozen Settings; the only place that reads os.environ for configuration."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from environs import Env

# Content types the gateway downloads (prefix match); anything else gets a polite refusal.
DEFAULT_MEDIA_TYPES = (
    "image/", "audio/", "video/", "text/plain", "text/markdown", "text/csv", "application/pdf", "application/msword",
    "application/vnd.openxmlformats-officedocument", "application/vnd.ms-",
)  # no archives, no application/octet-stream: a file sent as octet-stream is judged by its name's type
# In groups: one session per member ("user") or one shared by the whole group ("shared").
SESSION_GROUP_SCOPES = ("user", "shared")
# LOG_FORMAT: conf/logs.py formats lines as text or as one JSON object each
LOG_FORMATS = ("text", "json")
# Six months: the floor of 等保2.0 level 3 and the Cybersecurity Law (article 21) for audit logs.
MIN_AUDIT_RETENTION_DAYS = 180
# The development default of DJANGO_SECRET_KEY; production mode (DJANGO_SECURE=1) refuses it.
DEFAULT_SECRET_KEY = "dev-only-insecure-key-change-me"


@dataclass(frozen=True)
class Settings:
    """Every knob of every process; defaults are safe for a developer machine."""

    dingtalk_client_id: str
    dingtalk_client_secret: str
    dingtalk_robot_code: str
    dingtalk_openapi_endpoint: str
    database_url: str
    celery_broker_url: str
    redis_url: str
    redis_key_prefix: str
    tenant_id: str
    log_level: int  # a logging level; LOG_LEVEL may name it (INFO) or give its number (20)
    http_timeout_seconds: float
    # ingest
    ingest_buffer_max: int
    ingest_batch_max: int
    ingest_ping_interval_seconds: float
    ingest_watchdog_seconds: float
    ingest_pong_timeout_seconds: float
    ingest_backoff_max_seconds: float
    ingest_healthy_reset_seconds: float
    ingest_auth_retry_seconds: float
    ingest_metrics_port: int
    ingest_journal_dir: str
    ingest_journal_max_bytes: int
    # workers
    dedup_ttl_seconds: int
    session_ttl_seconds: int
    task_time_limit_seconds: int
    redis_visibility_timeout_seconds: int
    session_max_turns: int
    input_max_chars: int
    reply_max_bytes: int
    task_max_retries: int
    task_retry_backoff_seconds: float
    task_retry_backoff_max_seconds: float
    worker_ready_file: str
    # web
    django_secret_key: str
    django_debug: bool
    django_allowed_hosts: tuple[str, ...]
    # sandbox (local DingTalk stand-in used by `make run` without credentials)
    sandbox_port: int
    # LLM (any OpenAI-compatible server; empty base URL = not configured)
    llm_base_url: str
    llm_api_key: str
    llm_model: str
    llm_max_tokens: int
    # AI cards and the shared DingTalk rate budget (requests per second per API family)
    dingtalk_ai_card_template_id: str
    dingtalk_ai_card_content_key: str
    dingtalk_qps_webhook: float
    dingtalk_qps_robot_send: float
    dingtalk_qps_card: float
    # document search: empty URL = the embedded PostgreSQL + pgvector under pgvector_data_dir
    vector_database_url: str = ""
    pgvector_data_dir: str = "var/pgvector"
    embed_threads: int = 2
    # skills platform: routing, per-tenant skill settings, remote skills
    field_encryption_key: str = ""  # the newest of field_encryption_keys (FIELD_ENCRYPTION_KEY: a one-key alias)
    # FIELD_ENCRYPTION_KEYS, newest first: the first encrypts, every one decrypts (rotate_keys moves values on)
    field_encryption_keys: tuple[str, ...] = ()
    routed_turn_retention_days: int = 30
    router_dir: str = "var/router"
    router_poll_seconds: float = 5.0
    router_start_wait_seconds: float = 10.0
    settings_check_seconds: float = 2.0
    # message gateway (issue 6): media, context scope, ordering, delivery budget, buttons, caches
    dingtalk_robot_name: str = ""
    media_root: str = "var/media"
    media_retention_days: int = 30
    media_max_bytes: int = 20 * 1024 * 1024
    media_allowed_types: tuple[str, ...] = ()
    # Hosts, IPs and CIDRs remote skills and media downloads may reach although they are not public
    # (loopback, private, link-local); everything else non-public is refused (skills/remote/urlguard.py).
    outbound_url_allowlist: tuple[str, ...] = ()
    # A push larger than this is ACKed and answered politely, its content not kept (ingest/dispatch.py)
    ingest_max_frame_bytes: int = 256 * 1024
    session_group_scope: str = "user"
    order_max_wait_seconds: float = 180.0
    order_entry_ttl_seconds: float = 900.0
    order_poll_seconds: float = 0.2
    order_spin_seconds: float = 0.3
    order_settle_seconds: float = 0.05
    worker_delivery_limit: int = 3
    deliver_budget_wait_seconds: float = 10.0
    deliver_throttle_retries: int = 4
    button_ttl_seconds: int = 900
    skill_cache_size: int = 1024
    skill_cache_check_seconds: float = 1.0
    # longest silence of the LLM server (before the first token or between two)
    llm_read_timeout_seconds: float = 30.0
    # capacity (issue 11): answer slots per LLM endpoint shared by every worker (0 = no limit), the
    # longest a message waits for one, and the predicted wait above which the user is told it is busy
    llm_max_concurrency: int = 16
    llm_slot_wait_seconds: float = 300.0
    busy_notice_seconds: float = 5.0
    # reminders: beat sweeps due reminders this often; an unsent firing is retried after this long
    reminder_sweep_seconds: float = 5.0
    reminder_resend_after_seconds: float = 120.0
    # security (issue 14): production mode, the audit chain's key, operator access, the audit archive
    django_secure: bool = False
    django_trust_forwarded_proto: bool = False
    audit_hmac_key: str = ""
    database_owner_url: str = ""
    database_app_role: str = "dtbot_app"
    admin_session_idle_seconds: int = 30 * 60
    admin_require_otp: bool = False
    login_failure_limit: int = 5
    login_lockout_minutes: int = 30
    metrics_token: str = ""
    audit_archive_endpoint_url: str = ""
    audit_archive_bucket: str = ""
    audit_archive_prefix: str = "audit/"
    audit_archive_region: str = "us-east-1"
    audit_archive_access_key_id: str = ""
    audit_archive_secret_access_key: str = ""
    audit_retention_days: int = 180
    # operations (issue 13): the log line format, the listener's and workers' readiness heartbeats
    log_format: str = "text"
    ingest_heartbeat_seconds: float = 5.0
    worker_heartbeat_file: str = ""
    worker_heartbeat_seconds: float = 10.0
    # metrics and alerts (issue 13): worker exporter, message-record retention, the alert bridge
    worker_metrics_port: int = 9111
    worker_metrics_dir: str = ""
    message_record_retention_days: int = 90
    alert_webhook_token: str = ""
    ops_dingtalk_robot_webhook: str = ""
    ops_dingtalk_robot_secret: str = ""

    @property
    def broker_is_redis(self) -> bool:
        return self.celery_broker_url.startswith(("redis://", "rediss://"))

    @property
    def has_dingtalk_credentials(self) -> bool:
        return bool(self.dingtalk_client_id and self.dingtalk_client_secret)


def load(environ: dict[str, str] | None = None) -> Settings:
    """Parse the environment (or a given mapping) into Settings; raises on malformed values."""
    env = Env(eager=False, expand_vars=True)
    if environ is not None:
        # environs reads os.environ; a private copy keeps tests hermetic.
        import os

        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environ)
    try:
        client_id = env.str("DINGTALK_CLIENT_ID", "").strip()
        field_keys = _field_keys(env.str("FIELD_ENCRYPTION_KEYS", ""), env.str("FIELD_ENCRYPTION_KEY", ""))
        settings = Settings(
            dingtalk_client_id=client_id,
            dingtalk_client_secret=env.str("DINGTALK_CLIENT_SECRET", "").strip(),
            dingtalk_robot_code=env.str("DINGTALK_ROBOT_CODE", "").strip() or client_id,
            dingtalk_openapi_endpoint=env.str(
                "DINGTALK_OPENAPI_ENDPOINT", "https://api.dingtalk.com"
            ).rstrip("/"),
            database_url=env.str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/dtbot"),
            celery_broker_url=env.str(
                "CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"
            ),
            redis_url=env.str("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_key_prefix=env.str("REDIS_KEY_PREFIX", "dtbot:"),
            tenant_id=env.str("TENANT_ID", "") or client_id or "default",
            log_level=env.log_level("LOG_LEVEL", logging.INFO),
            http_timeout_seconds=env.float("HTTP_TIMEOUT_SECONDS", 10.0),
            ingest_buffer_max=env.int("INGEST_BUFFER_MAX", 1000),
            ingest_batch_max=env.int("INGEST_BATCH_MAX", 200),
            ingest_ping_interval_seconds=env.float("INGEST_PING_INTERVAL_SECONDS", 30.0),
            ingest_watchdog_seconds=env.float("INGEST_WATCHDOG_SECONDS", 50.0),
            ingest_pong_timeout_seconds=env.float("INGEST_PONG_TIMEOUT_SECONDS", 10.0),
            ingest_backoff_max_seconds=env.float("INGEST_BACKOFF_MAX_SECONDS", 60.0),
            ingest_healthy_reset_seconds=env.float("INGEST_HEALTHY_RESET_SECONDS", 60.0),
            ingest_auth_retry_seconds=env.float("INGEST_AUTH_RETRY_SECONDS", 300.0),
            ingest_metrics_port=env.int("INGEST_METRICS_PORT", 9108),
            ingest_journal_dir=env.str("INGEST_JOURNAL_DIR", "var/ingest-journal"),
            ingest_journal_max_bytes=env.int("INGEST_JOURNAL_MAX_BYTES", 512 * 1024 * 1024),
            dedup_ttl_seconds=env.int("DEDUP_TTL_SECONDS", 7 * 24 * 3600),
            session_ttl_seconds=env.int("SESSION_TTL_SECONDS", 30 * 60),
            task_time_limit_seconds=env.int("TASK_TIME_LIMIT_SECONDS", 300),
            redis_visibility_timeout_seconds=env.int("REDIS_VISIBILITY_TIMEOUT_SECONDS", 3600),
            session_max_turns=env.int("SESSION_MAX_TURNS", 10),
            input_max_chars=env.int("INPUT_MAX_CHARS", 4000),
            reply_max_bytes=env.int("REPLY_MAX_BYTES", 12000),
            task_max_retries=env.int("TASK_MAX_RETRIES", 5),
            task_retry_backoff_seconds=env.float("TASK_RETRY_BACKOFF_SECONDS", 1.0),
            task_retry_backoff_max_seconds=env.float("TASK_RETRY_BACKOFF_MAX_SECONDS", 60.0),
            worker_ready_file=env.str("WORKER_READY_FILE", ""),
            worker_heartbeat_file=env.str("WORKER_HEARTBEAT_FILE", ""),
            worker_heartbeat_seconds=env.float("WORKER_HEARTBEAT_SECONDS", 10.0),
            log_format=env.str("LOG_FORMAT", "text").strip().lower(),
            ingest_heartbeat_seconds=env.float("INGEST_HEARTBEAT_SECONDS", 5.0),
            django_secret_key=env.str("DJANGO_SECRET_KEY", DEFAULT_SECRET_KEY),
            django_debug=env.bool("DJANGO_DEBUG", False),
            django_allowed_hosts=tuple(env.list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])),
            sandbox_port=env.int("SANDBOX_PORT", 8765),
            llm_base_url=env.str("LLM_BASE_URL", "").strip().rstrip("/"),
            llm_api_key=env.str("LLM_API_KEY", "").strip(),
            llm_model=env.str("LLM_MODEL", "").strip(),
            llm_max_tokens=env.int("LLM_MAX_TOKENS", 2048),
            dingtalk_ai_card_template_id=env.str("DINGTALK_AI_CARD_TEMPLATE_ID", "").strip(),
            dingtalk_ai_card_content_key=env.str("DINGTALK_AI_CARD_CONTENT_KEY", "content").strip(),
            dingtalk_qps_webhook=env.float("DINGTALK_QPS_WEBHOOK", 20.0),
            dingtalk_qps_robot_send=env.float("DINGTALK_QPS_ROBOT_SEND", 20.0),
            dingtalk_qps_card=env.float("DINGTALK_QPS_CARD", 20.0),
            vector_database_url=env.str("VECTOR_DATABASE_URL", ""),
            pgvector_data_dir=env.str("PGVECTOR_DATA_DIR", "var/pgvector"),
            embed_threads=env.int("EMBED_THREADS", 2),
            field_encryption_key=field_keys[0] if field_keys else "",
            field_encryption_keys=field_keys,
            routed_turn_retention_days=env.int("ROUTED_TURN_RETENTION_DAYS", 30),
            router_dir=env.str("ROUTER_DIR", "var/router"),
            router_poll_seconds=env.float("ROUTER_POLL_SECONDS", 5.0),
            router_start_wait_seconds=env.float("ROUTER_START_WAIT_SECONDS", 10.0),
            settings_check_seconds=env.float("SETTINGS_CHECK_SECONDS", 2.0),
            dingtalk_robot_name=env.str("DINGTALK_ROBOT_NAME", "").strip(),
            media_root=env.str("MEDIA_ROOT", "var/media"),
            media_retention_days=env.int("MEDIA_RETENTION_DAYS", 30),
            media_max_bytes=env.int("MEDIA_MAX_BYTES", 20 * 1024 * 1024),
            media_allowed_types=tuple(
                t.strip().lower() for t in env.list("MEDIA_ALLOWED_TYPES", [], subcast=str) if t.strip()
            ) or DEFAULT_MEDIA_TYPES,
            ingest_max_frame_bytes=env.int("INGEST_MAX_FRAME_BYTES", 256 * 1024),
            outbound_url_allowlist=tuple(
                t.strip() for t in env.list("OUTBOUND_URL_ALLOWLIST", [], subcast=str) if t.strip()),
            session_group_scope=env.str("SESSION_GROUP_SCOPE", "user").strip().lower(),
            order_max_wait_seconds=env.float("ORDER_MAX_WAIT_SECONDS", 180.0),
            order_entry_ttl_seconds=env.float("ORDER_ENTRY_TTL_SECONDS", 900.0),
            order_poll_seconds=env.float("ORDER_POLL_SECONDS", 0.2),
            order_spin_seconds=env.float("ORDER_SPIN_SECONDS", 0.3),
            order_settle_seconds=env.float("ORDER_SETTLE_SECONDS", 0.05),
            worker_delivery_limit=env.int("WORKER_DELIVERY_LIMIT", 3),
            deliver_budget_wait_seconds=env.float("DELIVER_BUDGET_WAIT_SECONDS", 10.0),
            deliver_throttle_retries=env.int("DELIVER_THROTTLE_RETRIES", 4),
            button_ttl_seconds=env.int("BUTTON_TTL_SECONDS", 900),
            skill_cache_size=env.int("SKILL_CACHE_SIZE", 1024),
            skill_cache_check_seconds=env.float("SKILL_CACHE_CHECK_SECONDS", 1.0),
            llm_read_timeout_seconds=env.float("LLM_READ_TIMEOUT_SECONDS", 30.0),
            llm_max_concurrency=env.int("LLM_MAX_CONCURRENCY", 16),
            llm_slot_wait_seconds=env.float("LLM_SLOT_WAIT_SECONDS", 300.0),
            busy_notice_seconds=env.float("BUSY_NOTICE_SECONDS", 5.0),
            reminder_sweep_seconds=env.float("REMINDER_SWEEP_SECONDS", 5.0),
            reminder_resend_after_seconds=env.float("REMINDER_RESEND_AFTER_SECONDS", 120.0),
            django_secure=env.bool("DJANGO_SECURE", False),
            django_trust_forwarded_proto=env.bool("DJANGO_TRUST_FORWARDED_PROTO", False),
            audit_hmac_key=env.str("AUDIT_HMAC_KEY", "").strip(),
            database_owner_url=env.str("DATABASE_OWNER_URL", "").strip(),
            database_app_role=env.str("DATABASE_APP_ROLE", "dtbot_app").strip(),
            admin_session_idle_seconds=env.int("ADMIN_SESSION_IDLE_SECONDS", 30 * 60),
            admin_require_otp=env.bool("ADMIN_REQUIRE_OTP", False),
            login_failure_limit=env.int("LOGIN_FAILURE_LIMIT", 5),
            login_lockout_minutes=env.int("LOGIN_LOCKOUT_MINUTES", 30),
            metrics_token=env.str("METRICS_TOKEN", "").strip(),
            audit_archive_endpoint_url=env.str("AUDIT_ARCHIVE_ENDPOINT_URL", "").strip(),
            audit_archive_bucket=env.str("AUDIT_ARCHIVE_BUCKET", "").strip(),
            audit_archive_prefix=env.str("AUDIT_ARCHIVE_PREFIX", "audit/").strip(),
            audit_archive_region=env.str("AUDIT_ARCHIVE_REGION", "us-east-1").strip(),
            audit_archive_access_key_id=env.str("AUDIT_ARCHIVE_ACCESS_KEY_ID", "").strip(),
            audit_archive_secret_access_key=env.str("AUDIT_ARCHIVE_SECRET_ACCESS_KEY", "").strip(),
            audit_retention_days=env.int("AUDIT_RETENTION_DAYS", 180),
            worker_metrics_port=env.int("WORKER_METRICS_PORT", 9111),
            worker_metrics_dir=env.str("WORKER_METRICS_DIR", "").strip(),
            message_record_retention_days=env.int("MESSAGE_RECORD_RETENTION_DAYS", 90),
            alert_webhook_token=env.str("ALERT_WEBHOOK_TOKEN", "").strip(),
            ops_dingtalk_robot_webhook=env.str("OPS_DINGTALK_ROBOT_WEBHOOK", "").strip(),
            ops_dingtalk_robot_secret=env.str("OPS_DINGTALK_ROBOT_SECRET", "").strip(),
        )
        env.seal()
    finally:
        if environ is not None:
            os.environ.clear()
            os.environ.update(saved)
    if settings.audit_retention_days < MIN_AUDIT_RETENTION_DAYS:
        raise ValueError(f"AUDIT_RETENTION_DAYS must be at least {MIN_AUDIT_RETENTION_DAYS} "
                         "(等保2.0 and the Cybersecurity Law keep logs for six months)")
    if settings.message_record_retention_days * 86400 < settings.dedup_ttl_seconds:
        # The record's unique msgId backs the Redis claim up: it must outlive it.
        raise ValueError("MESSAGE_RECORD_RETENTION_DAYS must cover DEDUP_TTL_SECONDS (records are the dedup backstop)")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", settings.database_app_role):
        raise ValueError("DATABASE_APP_ROLE must be a plain identifier (letters, digits, _)")
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {LOG_FORMATS}")
    if settings.session_group_scope not in SESSION_GROUP_SCOPES:
        raise ValueError(f"SESSION_GROUP_SCOPE must be one of {SESSION_GROUP_SCOPES}")
    if settings.task_time_limit_seconds >= settings.redis_visibility_timeout_seconds:
        raise ValueError(
            "TASK_TIME_LIMIT_SECONDS must stay below REDIS_VISIBILITY_TIMEOUT_SECONDS, "
            "or Redis redelivers tasks that are still running"
        )
    if settings.task_retry_backoff_max_seconds >= settings.redis_visibility_timeout_seconds:
        raise ValueError(
            "TASK_RETRY_BACKOFF_MAX_SECONDS must stay below REDIS_VISIBILITY_TIMEOUT_SECONDS"
        )
    return settings


def _field_keys(keys: str, one_key: str) -> tuple[str, ...]:
    """FIELD_ENCRYPTION_KEYS (comma-separated, newest first), else FIELD_ENCRYPTION_KEY alone."""
    listed = tuple(k.strip() for k in keys.split(",") if k.strip())
    return listed or ((one_key.strip(),) if one_key.strip() else ())


def production_problems(settings: Settings) -> list[str]:
    """Why production mode (DJANGO_SECURE=1) must not start with these settings; [] when it may."""
    problems = []
    key = settings.django_secret_key
    if key == DEFAULT_SECRET_KEY or len(key) < 50 or len(set(key)) < 5:
        problems.append("DJANGO_SECRET_KEY is the development default or weak (50+ random characters)")
    if not settings.field_encryption_key:
        problems.append("FIELD_ENCRYPTION_KEY(S) is not set (the key of the secrets stored in the database)")
    if len(settings.audit_hmac_key) < 32:
        problems.append("AUDIT_HMAC_KEY is not set or shorter than 32 characters (the audit chain's key)")
    if settings.django_debug:
        problems.append("DJANGO_DEBUG is on")
    if not settings.metrics_token:
        problems.append("METRICS_TOKEN is not set (/metrics would be open)")
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide Settings, parsed once."""
    return load()
