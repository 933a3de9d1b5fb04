"""Actions on the dead-letter queue: store a failed message, mark it replayed."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from webapp.actions.records import epoch_to_datetime, record_fields
from webapp.models import DeadLetter, MessageRecord, MessageStatus


def do_dead_letter(msg_id: str, stage: str, payload: dict[str, Any], error: str) -> DeadLetter:
    """Keep the failed stage's input for replay and mark the message dead, in one transaction
    (with the stage timestamps the payload carried: deliver would have written them)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Durable even where the connection relaxed commits (the workers do).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO ON")
        letter = DeadLetter.objects.create(
            msg_id=msg_id, stage=stage, payload=payload, error=error[:8000]
        )
        stages = {n: epoch_to_datetime(v) if n.endswith("_at") else v
                  for n, v in record_fields(payload.get("record")).items()}
        MessageRecord.objects.filter(msg_id=msg_id).update(
            status=MessageStatus.DEAD, error=error[:4000], **stages
        )
    return letter


def do_mark_replayed(letter: DeadLetter) -> None:
    """Count one replay of the letter; the message is processing again."""
    now = timezone.now()
    with transaction.atomic():
        DeadLetter.objects.filter(pk=letter.pk).update(
            replayed_at=now, replay_count=F("replay_count") + 1
        )
        MessageRecord.objects.filter(msg_id=letter.msg_id).update(
            status=MessageStatus.PROCESSING, error=""
        )
    letter.refresh_from_db()
