"""Retention: delete routed-turn text, message records and stored media past their retention period, audited."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db import transaction

from conf.settings import get_settings
from webapp.actions.audit import record_audit
from webapp.actions.personal_data import MEDIA, registry
from webapp.actions.routing import do_purge_routed_turns
from webapp.models import MessageRecord
from webapp.models.audit import AuditAction

DAY = 86400.0


def do_apply_retention(actor: str = "retention", now: float | None = None) -> dict[str, int]:
    """Purge what is past ROUTED_TURN_RETENTION_DAYS / MESSAGE_RECORD_RETENTION_DAYS / MEDIA_RETENTION_DAYS;
    returns the counts."""
    settings = get_settings()
    now = time.time() if now is None else now
    media = registry.aged(MEDIA).purge_older_than(now - settings.media_retention_days * DAY)
    with transaction.atomic():
        turns = do_purge_routed_turns()
        records = do_purge_message_records(now)
        counts = {"routed_turns": turns, "message_records": records, "media_files": media}
        if turns or records or media:
            # The audit row holds counts and periods only: what was deleted was personal data.
            record_audit(actor=actor, action=AuditAction.RETENTION_PURGE, target_type="retention", detail={
                **counts,
                "routed_turn_days": settings.routed_turn_retention_days,
                "message_record_days": settings.message_record_retention_days,
                "media_days": settings.media_retention_days,
            })
    return counts


def do_purge_message_records(now: float | None = None) -> int:
    """Delete message records (status, timeline, user link) that arrived more than
    MESSAGE_RECORD_RETENTION_DAYS ago; returns the count. The retention is far longer than any
    re-push or replay of the same msgId (the dedup claim), so no message is answered twice for it."""
    now = time.time() if now is None else now
    cutoff = datetime.fromtimestamp(now - get_settings().message_record_retention_days * DAY, tz=UTC)
    deleted, _ = MessageRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
