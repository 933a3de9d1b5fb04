"""DjangoReminderStore: the schedule skill's ReminderStore on the Reminder model (scoped by tenant and user)."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from skills.schedule.store import ReminderDraft, StoredReminder
from webapp.actions.audit import record_audit
from webapp.actions.privacy import subject_ref
from webapp.models.audit import AuditAction
from webapp.models.reminders import Reminder


def _stored(row: Reminder) -> StoredReminder:
    return StoredReminder(
        id=row.pk, title=row.title, event_at=row.event_at, rrule=row.rrule or None,
        reminder_offset=row.reminder_offset, timezone=row.timezone,
    )


class DjangoReminderStore:
    """Named in ScheduleConfig.store; constructed without arguments in the skills worker."""

    def create(self, draft: ReminderDraft) -> StoredReminder:
        defaults = {
            "tenant_id": draft.tenant_id, "user_id": draft.user_id,
            "conversation_id": draft.conversation_id, "conversation_type": draft.conversation_type,
            "title": draft.title[:200], "event_at": draft.event_at, "fire_at": draft.fire_at,
            "reminder_offset": draft.reminder_offset, "rrule": draft.rrule or "",
            "timezone": draft.timezone, "lang": draft.lang,
        }
        try:
            with transaction.atomic():
                row, _ = Reminder.objects.get_or_create(source_key=draft.key, defaults=defaults)
        except IntegrityError:  # a concurrent confirm of the same card won the insert
            row = Reminder.objects.get(source_key=draft.key)
        return _stored(row)

    def pending(self, tenant_id: str, user_id: str, limit: int = 200) -> list[StoredReminder]:
        rows = Reminder.objects.filter(
            tenant_id=tenant_id, user_id=user_id, status=Reminder.Status.PENDING,
        ).order_by("event_at")[:limit]
        return [_stored(r) for r in rows]

    def cancel(self, tenant_id: str, user_id: str, reminder_id: int) -> bool:
        """The owner cancels a pending reminder; audited with the person named by a pseudonym."""
        with transaction.atomic():
            updated = Reminder.objects.filter(
                pk=reminder_id, tenant_id=tenant_id, user_id=user_id, status=Reminder.Status.PENDING,
            ).update(status=Reminder.Status.CANCELLED)
            if updated:
                ref = subject_ref(tenant_id, user_id)
                record_audit(actor=f"user:{ref}", action=AuditAction.REMINDER_CANCEL_BY_USER, tenant_id=tenant_id,
                             target_type="reminder", target_id=str(reminder_id), detail={"subject": ref})
        return bool(updated)

    def reschedule(self, tenant_id: str, user_id: str, reminder_id: int, event_at: datetime) -> StoredReminder | None:
        with transaction.atomic():
            row = (
                Reminder.objects.select_for_update()
                .filter(pk=reminder_id, tenant_id=tenant_id, user_id=user_id, status=Reminder.Status.PENDING)
                .first()
            )
            if row is None:
                return None
            row.event_at = event_at
            row.fire_at = event_at - row.reminder_offset
            row.save(update_fields=["event_at", "fire_at", "updated_at"])
        return _stored(row)
