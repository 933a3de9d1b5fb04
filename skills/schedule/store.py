"""The storage seam of the schedule skill: what it needs from a reminder store (Django implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ReminderDraft:
    """A confirmed reminder to save; `key` makes a double-clicked confirm save it once."""

    key: str
    tenant_id: str
    user_id: str
    conversation_id: str
    conversation_type: str
    title: str
    event_at: datetime  # aware; for a recurrence, its first occurrence (the wall-clock anchor)
    rrule: str | None
    reminder_offset: timedelta
    timezone: str
    lang: str = "zh"

    @property
    def fire_at(self) -> datetime:
        return self.event_at - self.reminder_offset


@dataclass(frozen=True)
class StoredReminder:
    """A pending reminder as the store returns it; `event_at` is its next occurrence."""

    id: int
    title: str
    event_at: datetime
    rrule: str | None
    reminder_offset: timedelta
    timezone: str

    @property
    def fire_at(self) -> datetime:
        return self.event_at - self.reminder_offset


@runtime_checkable
class ReminderStore(Protocol):
    """Reminder rows of one user. Every method is scoped by tenant and user: nobody edits others' rows."""

    def create(self, draft: ReminderDraft) -> StoredReminder:
        """Save the draft; a second call with the same key returns the first row unchanged."""
        ...

    def pending(self, tenant_id: str, user_id: str, limit: int = 200) -> list[StoredReminder]:
        """The user's pending reminders, soonest first."""
        ...

    def cancel(self, tenant_id: str, user_id: str, reminder_id: int) -> bool:
        """Mark one pending reminder cancelled; False when it is not pending or not the user's."""
        ...

    def reschedule(self, tenant_id: str, user_id: str, reminder_id: int, event_at: datetime) -> StoredReminder | None:
        """Move one pending reminder (for a recurrence: the whole series) to a new time."""
        ...
