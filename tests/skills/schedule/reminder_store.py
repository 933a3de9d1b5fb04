"""An in-memory ReminderStore for the schedule skill's flow tests (the Django store is the real one)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from skills.schedule.store import ReminderDraft, StoredReminder


@dataclass
class Row:
    draft: ReminderDraft
    reminder: StoredReminder
    status: str = "pending"


@dataclass
class MemoryReminderStore:
    """Keeps the protocol's promises: idempotent create per key, every call scoped by tenant and user."""

    rows: dict[int, Row] = field(default_factory=dict)
    failing: bool = False

    def _check(self) -> None:
        if self.failing:
            raise ConnectionError("reminder database unreachable")

    def create(self, draft: ReminderDraft) -> StoredReminder:
        self._check()
        for row in self.rows.values():
            if row.draft.key == draft.key:
                return row.reminder
        reminder = StoredReminder(len(self.rows) + 1, draft.title, draft.event_at, draft.rrule,
                                  draft.reminder_offset, draft.timezone)
        self.rows[reminder.id] = Row(draft, reminder)
        return reminder

    def _mine(self, tenant_id: str, user_id: str, reminder_id: int) -> Row | None:
        row = self.rows.get(reminder_id)
        if row and row.status == "pending" and (row.draft.tenant_id, row.draft.user_id) == (tenant_id, user_id):
            return row
        return None

    def pending(self, tenant_id: str, user_id: str, limit: int = 200) -> list[StoredReminder]:
        self._check()
        rows = [r for r in self.rows.values() if self._mine(tenant_id, user_id, r.reminder.id)]
        return sorted((r.reminder for r in rows), key=lambda r: r.event_at)[:limit]

    def cancel(self, tenant_id: str, user_id: str, reminder_id: int) -> bool:
        self._check()
        row = self._mine(tenant_id, user_id, reminder_id)
        if row is None:
            return False
        row.status = "cancelled"
        return True

    def reschedule(self, tenant_id: str, user_id: str, reminder_id: int, event_at: datetime) -> StoredReminder | None:
        self._check()
        row = self._mine(tenant_id, user_id, reminder_id)
        if row is None:
            return None
        row.reminder = replace(row.reminder, event_at=event_at)
        return row.reminder
