"""DjangoReminderStore and claim_due_reminders on PostgreSQL: scoped rows, fire once, recurrences, two sweepers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from skills.schedule.store import ReminderDraft
from testkit.personas import alice, bob
from webapp.actions.reminder_store import DjangoReminderStore
from webapp.actions.reminders import (
    MAX_ATTEMPTS,
    claim_due_reminders,
    mark_delivered,
    mark_failed,
    undelivered_firings,
)
from webapp.models.reminders import Reminder, ReminderFiring

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 2, 9, 0, tzinfo=SHANGHAI)  # a Monday


def draft(key: str = "k1", *, user: str = alice.user_id, when: datetime | None = None, rrule: str | None = None,
          offset: timedelta = timedelta(0), title: str = "stand-up") -> ReminderDraft:
    return ReminderDraft(
        key=key, tenant_id="t1", user_id=user, conversation_id=f"cid-{user}", conversation_type="1",
        title=title, event_at=when or NOW + timedelta(hours=1), rrule=rrule, reminder_offset=offset,
        timezone="Asia/Shanghai", lang="en",
    )


@pytest.mark.django_db
class TestDjangoReminderStore:
    def test_a_double_clicked_confirm_saves_one_reminder(self):
        store = DjangoReminderStore()
        first = store.create(draft("card-1:confirm"))
        second = store.create(draft("card-1:confirm", title="changed"))
        assert first == second
        assert Reminder.objects.count() == 1

    def test_fire_time_is_the_event_minus_the_offset(self):
        stored = DjangoReminderStore().create(draft(offset=timedelta(minutes=15)))
        row = Reminder.objects.get(pk=stored.id)
        assert row.fire_at == row.event_at - timedelta(minutes=15)

    def test_pending_lists_only_the_users_own_pending_reminders_soonest_first(self):
        store = DjangoReminderStore()
        late = store.create(draft("a", when=NOW + timedelta(days=2)))
        soon = store.create(draft("b", when=NOW + timedelta(hours=2)))
        store.create(draft("c", user=bob.user_id))
        gone = store.create(draft("d"))
        store.cancel("t1", alice.user_id, gone.id)
        assert [r.id for r in store.pending("t1", alice.user_id)] == [soon.id, late.id]
        assert store.pending("t2", alice.user_id) == []

    def test_nobody_cancels_or_moves_someone_elses_reminder(self):
        store = DjangoReminderStore()
        mine = store.create(draft(user=alice.user_id))
        assert store.cancel("t1", bob.user_id, mine.id) is False
        assert store.reschedule("t1", bob.user_id, mine.id, NOW + timedelta(days=1)) is None
        assert Reminder.objects.get(pk=mine.id).status == Reminder.Status.PENDING

    def test_reschedule_keeps_the_offset(self):
        store = DjangoReminderStore()
        stored = store.create(draft(offset=timedelta(minutes=10)))
        moved = store.reschedule("t1", alice.user_id, stored.id, NOW + timedelta(days=1))
        assert moved is not None and moved.event_at == NOW + timedelta(days=1)
        assert Reminder.objects.get(pk=stored.id).fire_at == NOW + timedelta(days=1, minutes=-10)

    def test_a_cancelled_reminder_cannot_be_cancelled_again(self):
        store = DjangoReminderStore()
        stored = store.create(draft())
        assert store.cancel("t1", alice.user_id, stored.id) is True
        assert store.cancel("t1", alice.user_id, stored.id) is False


@pytest.mark.django_db
class TestClaimDueReminders:
    def test_a_due_reminder_fires_once_and_is_done(self):
        stored = DjangoReminderStore().create(draft(when=NOW))
        [payload] = claim_due_reminders(now=NOW + timedelta(seconds=1))
        assert payload["reminder_id"] == stored.id
        assert payload["user_id"] == alice.user_id and payload["title"] == "stand-up"
        assert payload["delivery_key"] == f"reminder:{stored.id}:{NOW.astimezone(ZoneInfo('UTC')).isoformat()}"
        assert "stand-up" in payload["text"]
        assert Reminder.objects.get(pk=stored.id).status == Reminder.Status.FIRED
        assert claim_due_reminders(now=NOW + timedelta(minutes=5)) == []

    def test_nothing_fires_before_its_time_or_after_a_cancel(self):
        store = DjangoReminderStore()
        store.create(draft("later", when=NOW + timedelta(hours=1)))
        cancelled = store.create(draft("cancelled", when=NOW))
        store.cancel("t1", alice.user_id, cancelled.id)
        assert claim_due_reminders(now=NOW) == []

    def test_a_weekly_reminder_moves_to_its_next_occurrence(self):
        stored = DjangoReminderStore().create(draft(when=NOW, rrule="FREQ=WEEKLY;BYDAY=MO"))
        [first] = claim_due_reminders(now=NOW)
        row = Reminder.objects.get(pk=stored.id)
        assert row.status == Reminder.Status.PENDING
        assert row.event_at == NOW + timedelta(days=7)
        assert row.occurrence == 1
        assert claim_due_reminders(now=NOW + timedelta(days=6)) == []
        [second] = claim_due_reminders(now=NOW + timedelta(days=7))
        assert first["occurrence_at"] != second["occurrence_at"]
        assert ReminderFiring.objects.filter(reminder_id=stored.id).count() == 2

    def test_occurrences_missed_while_nobody_swept_fire_once_not_once_each(self):
        stored = DjangoReminderStore().create(draft(when=NOW, rrule="FREQ=DAILY"))
        payloads = claim_due_reminders(now=NOW + timedelta(days=3, hours=2))
        assert len(payloads) == 1
        assert Reminder.objects.get(pk=stored.id).event_at == NOW + timedelta(days=4)

    def test_a_reminder_put_back_to_an_occurrence_that_fired_is_not_sent_again(self):
        stored = DjangoReminderStore().create(draft(when=NOW))
        claim_due_reminders(now=NOW)
        Reminder.objects.filter(pk=stored.id).update(status=Reminder.Status.PENDING)  # e.g. a restored backup
        assert claim_due_reminders(now=NOW + timedelta(minutes=1)) == []
        assert ReminderFiring.objects.count() == 1

    def test_undelivered_firings_come_back_until_delivered_or_given_up(self):
        DjangoReminderStore().create(draft("a", when=NOW))
        DjangoReminderStore().create(draft("b", when=NOW))
        first, second = claim_due_reminders(now=NOW)
        later = NOW + timedelta(minutes=5)
        assert {f["firing_id"] for f in undelivered_firings(now=later)} == {first["firing_id"], second["firing_id"]}
        assert mark_delivered(first["firing_id"]) is True
        assert mark_delivered(first["firing_id"]) is False
        mark_failed(second["firing_id"], "HTTP 500")
        [left] = undelivered_firings(now=later)
        assert left["attempts"] == 1
        mark_failed(second["firing_id"], "refused for good", give_up=True)
        assert undelivered_firings(now=later) == []
        assert ReminderFiring.objects.get(pk=second["firing_id"]).attempts == MAX_ATTEMPTS


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweepers_never_claim_the_same_reminder():
    store = DjangoReminderStore()
    for i in range(50):
        store.create(draft(f"k{i}", user=f"user{i}", when=NOW))
    holding = threading.Barrier(2, timeout=10)
    results: dict[str, list[dict]] = {}
    errors: list[BaseException] = []

    def sweeper(name: str, limit: int, hold: bool) -> None:
        try:
            with transaction.atomic():  # locks stay held until this outer transaction commits
                results[name] = claim_due_reminders(now=NOW, limit=limit)
                holding.wait()
                if hold:
                    holding.wait()  # until the other sweeper has swept
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=sweeper, args=("first", 30, True))
    first.start()
    second_done = threading.Event()

    def second() -> None:
        try:
            holding.wait()  # the first sweeper holds its 30 rows now
            results["second"] = claim_due_reminders(now=NOW, limit=100)
            second_done.set()
            holding.wait()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    other = threading.Thread(target=second)
    other.start()
    first.join(20)
    other.join(20)
    assert not errors, errors
    assert second_done.is_set()
    a = {p["reminder_id"] for p in results["first"]}
    b = {p["reminder_id"] for p in results["second"]}
    assert len(a) == 30 and len(b) == 20
    assert a.isdisjoint(b)
    assert claim_due_reminders(now=NOW + timedelta(minutes=1)) == []
    assert ReminderFiring.objects.count() == 50
