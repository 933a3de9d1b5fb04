"""Reminders end to end: chat proposes, a confirm saves, beat + the pipeline worker send it exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sandbox.dingtalk.messages import corp_id
from skills.schedule.store import ReminderDraft
from testkit.personas import alice, bob
from testkit.stack import SANDBOX_CLIENT_ID, Stack
from testkit.waits import wait_for
from tests.support.skill_stack import run_bot, start_pipeline
from webapp.actions.reminder_store import DjangoReminderStore
from webapp.models.reminders import Reminder, ReminderFiring

pytestmark = pytest.mark.slow

ASK = "remind me in 1 minute to stretch"


def test_a_reminder_confirmed_on_its_card_is_sent_once_by_the_beat_driven_sweep_even_across_restarts(
        stack: Stack):
    client = run_bot(stack, REMINDER_SWEEP_SECONDS="1", REMINDER_RESEND_AFTER_SECONDS="3")
    beat = stack.start_beat()
    message = alice.send(client, ASK)
    [proposal] = client.wait_for_replies(1, timeout=30, msg_id=message["msgId"])
    assert proposal["msgtype"] == "actionCard" and "stretch" in proposal["text"]
    titles = [b["title"] for b in proposal["body"]["actionCard"]["btns"]]
    assert titles == ["Confirm", "Cancel"]
    assert Reminder.objects.count() == 0  # nothing is saved before the confirm

    # The user taps "Confirm": the client sends the button's title, the gateway maps it back.
    tap = alice.send(client, "Confirm")
    [done] = client.wait_for_replies(1, timeout=30, msg_id=tap["msgId"])
    assert "stretch" in done["text"]
    reminder = Reminder.objects.get(user_id=alice.staff_id)
    assert reminder.fire_at <= datetime.now(UTC) + timedelta(seconds=61)  # "in 1 minute", whole minutes
    # Skip the wait: the minute passes for the sweep by moving the due time 2 s ahead.
    Reminder.objects.filter(pk=reminder.pk).update(fire_at=datetime.now(UTC) + timedelta(seconds=2))
    reminder.refresh_from_db()
    [sent] = wait_for(lambda: client.replies(via="batchSend"), 30, "the reminder's batchSend")
    assert sent["user_ids"] == [alice.staff_id]
    assert "stretch" in sent["text"]
    firing = wait_for(lambda: ReminderFiring.objects.filter(reminder=reminder, delivered_at__isnull=False).first(),
                      10, "the firing to be recorded as delivered")
    assert firing.attempts == 1
    assert abs((firing.delivered_at - reminder.fire_at).total_seconds()) < 5  # on time, to the sweep
    reminder.refresh_from_db()
    assert reminder.status == Reminder.Status.FIRED

    # Restart what sweeps (kill -9): the firing row says it went; nothing is sent again.
    [pipeline] = [p for p in stack.procs if p.role == "worker-pipeline" and p.alive()]
    stack.kill(beat)
    stack.kill(pipeline)
    new_worker = start_pipeline(stack)
    stack.start_beat()
    wait_for(lambda: "dtbot.reminders.sweep" in new_worker.log_text(), 20, "the new worker to run sweeps")
    time.sleep(3)
    assert len(client.replies(via="batchSend")) == 1
    assert ReminderFiring.objects.count() == 1


def test_a_weekly_reminder_stays_pending_for_its_next_occurrence_after_firing(stack: Stack):
    client = run_bot(stack, REMINDER_SWEEP_SECONDS="1")
    stack.start_beat()
    now = datetime.now(UTC)
    store = DjangoReminderStore()
    event = now.astimezone(ZoneInfo("Asia/Shanghai")) + timedelta(seconds=2)
    stored = store.create(ReminderDraft(
        key="weekly-1", tenant_id=corp_id(SANDBOX_CLIENT_ID), user_id=bob.staff_id, conversation_id="",
        conversation_type="1",
        title="send the report", event_at=event, rrule="FREQ=WEEKLY", reminder_offset=timedelta(0),
        timezone="Asia/Shanghai", lang="en",
    ))
    [sent] = wait_for(lambda: client.replies(via="batchSend"), 30, "the weekly reminder")
    assert sent["user_ids"] == [bob.staff_id] and "send the report" in sent["text"]
    row = wait_for(lambda: Reminder.objects.filter(pk=stored.id, occurrence=1).first(), 10, "the advance")
    assert row.status == Reminder.Status.PENDING
    assert abs((row.event_at - event).total_seconds() - 7 * 86400) < 1
    time.sleep(2)
    assert len(client.replies(via="batchSend")) == 1
