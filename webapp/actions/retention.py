"""Retention: delete routed-turn text and stored media past their retention period, audited."""

from __future__ import annotations

import time

from django.db import transaction

from conf.settings import get_settings
from webapp.actions.audit import record_audit
from webapp.actions.personal_data import MEDIA, registry
from webapp.actions.routing import do_purge_routed_turns
from webapp.models.audit import AuditAction

DAY = 86400.0


def do_apply_retention(actor: str = "retention", now: float | None = None) -> dict[str, int]:
    """Purge what is past ROUTED_TURN_RETENTION_DAYS / MEDIA_RETENTION_DAYS; returns the counts."""
    settings = get_settings()
    now = time.time() if now is None else now
    media = registry.aged(MEDIA).purge_older_than(now - settings.media_retention_days * DAY)
    with transaction.atomic():
        turns = do_purge_routed_turns()
        counts = {"routed_turns": turns, "media_files": media}
        if turns or media:
            # The audit row holds counts and periods only: what was deleted was personal data.
            record_audit(actor=actor, action=AuditAction.RETENTION_PURGE, target_type="retention", detail={
                **counts,
                "routed_turn_days": settings.routed_turn_retention_days,
                "media_days": settings.media_retention_days,
            })
    return counts
