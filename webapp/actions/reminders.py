"""Fire due reminders exactly once: claim with FOR UPDATE SKIP LOCKED, record the firing, advance, commit.

The integrator's beat-driven sweep calls claim_due_reminders() and sends each returned payload with
the robot OpenAPI one-to-one send (idempotency key = payload["delivery_key"]), then mark_delivered().
A crash between commit and send leaves the firing undelivered: undelivered_firings() re-sends them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F
from django.utils import timezone as dj_timezone

from skills.schedule.recurrence import next_occurrence
from webapp.actions.audit import record_audit
from webapp.models.audit import AuditAction
from webapp.models.reminders import Reminder, ReminderFiring


def reminder_text(title: str, event_at: datetime, zone: str, lang: str) -> str:
    """The message the user receives: '⏰ 提醒：开会（15:00）'."""
    local = event_at.astimezone(ZoneInfo(zone))
    if lang == "en":
        return f"⏰ Reminder: {title} ({local:%a %H:%M})"
    return f"⏰ 提醒：{title}（{local.month}月{local.day}日 {local:%H:%M}）"


def _payload(reminder: Reminder, firing: ReminderFiring) -> dict[str, Any]:
    """JSON primitives only: this travels to the deliver task."""
    return {
        "firing_id": firing.pk,
        "reminder_id": reminder.pk,
        "delivery_key": f"reminder:{reminder.pk}:{firing.occurrence_at.isoformat()}",
        "tenant_id": reminder.tenant_id,
        "user_id": reminder.user_id,
        "conversation_id": reminder.conversation_id,
        "conversation_type": reminder.conversation_type,
        "title": reminder.title,
        "occurrence_at": firing.occurrence_at.isoformat(),
        "text": reminder_text(reminder.title, firing.occurrence_at, reminder.timezone, reminder.lang),
        "attempts": firing.attempts,
    }


def _advance(reminder: Reminder, now: datetime) -> None:
    """Move a recurrence to its next occurrence that fires after now (missed ones fire once, as this one);
    a one-off reminder becomes fired."""
    reminder.occurrence += 1
    reminder.fired_at = now
    if reminder.rrule:
        anchor = reminder.event_at.astimezone(ZoneInfo(reminder.timezone))
        after = max(reminder.event_at, now + reminder.reminder_offset)
        following = next_occurrence(reminder.rrule, anchor, after)
        if following is not None:
            reminder.event_at = following
            reminder.fire_at = following - reminder.reminder_offset
            return
    reminder.status = Reminder.Status.FIRED


def claim_due_reminders(now: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Claim up to `limit` due reminders and return what to deliver; concurrent sweepers never share one.

    Rows another sweeper holds are skipped (SKIP LOCKED), and the unique (reminder, occurrence_at)
    constraint would reject a second firing of the same occurrence even without the lock.
    """
    now = now or dj_timezone.now()
    payloads = []
    with transaction.atomic():
        due = list(
            Reminder.objects.select_for_update(skip_locked=True)
            .filter(status=Reminder.Status.PENDING, fire_at__lte=now)
            .order_by("fire_at")[:limit]
        )
        for reminder in due:
            firing, created = ReminderFiring.objects.get_or_create(
                reminder=reminder, occurrence_at=reminder.event_at, defaults={"fired_at": now},
            )
            if created:
                payloads.append(_payload(reminder, firing))
            _advance(reminder, now)
            reminder.save(update_fields=["event_at", "fire_at", "status", "occurrence", "fired_at", "updated_at"])
    return payloads


def mark_delivered(firing_id: int, now: datetime | None = None) -> bool:
    """Record a successful send; False if it was already recorded."""
    return bool(
        ReminderFiring.objects.filter(pk=firing_id, delivered_at__isnull=True)
        .update(delivered_at=now or dj_timezone.now(), attempts=F("attempts") + 1, error="")
    )


MAX_ATTEMPTS = 10  # sends of one firing before it is left for an operator


def mark_failed(firing_id: int, error: str, give_up: bool = False) -> None:
    """Record a failed send; `give_up` (refused for good, or outcome unknown) stops the re-sends."""
    attempts = MAX_ATTEMPTS if give_up else F("attempts") + 1
    ReminderFiring.objects.filter(pk=firing_id, delivered_at__isnull=True).update(
        attempts=attempts, error=error[:2000])


def undelivered_firings(older_than: timedelta = timedelta(minutes=2), max_attempts: int = MAX_ATTEMPTS,
                        now: datetime | None = None) -> list[dict[str, Any]]:
    """Firings claimed but not delivered for a while (a sweeper died after commit): send them again."""
    cutoff = (now or dj_timezone.now()) - older_than
    firings = (
        ReminderFiring.objects.select_related("reminder")
        .filter(delivered_at__isnull=True, fired_at__lte=cutoff, attempts__lt=max_attempts)
        .order_by("fired_at")[:100]
    )
    return [_payload(f.reminder, f) for f in firings]


def do_cancel_reminders(reminder_ids: list[int], actor: str) -> int:
    """An operator cancels pending reminders (admin); one audit row names them. Returns how many."""
    with transaction.atomic():
        pending = Reminder.objects.select_for_update().filter(pk__in=reminder_ids, status=Reminder.Status.PENDING)
        cancelled = sorted(pending.values_list("pk", flat=True))
        Reminder.objects.filter(pk__in=cancelled).update(status=Reminder.Status.CANCELLED)
        if cancelled:
            # Ids only: the titles are the users' own words.
            record_audit(actor=actor, action=AuditAction.REMINDER_CANCEL, target_type="reminder",
                         target_id=",".join(map(str, cancelled))[:256], detail={"ids": cancelled})
    return len(cancelled)
