"""The reminder sweep against the DingTalk sandbox: proactive sends, once per firing, crash windows."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from skills.schedule.store import ReminderDraft
from testkit.personas import alice, bob
from testkit.services import free_port
from webapp.actions.reminder_store import DjangoReminderStore
from webapp.actions.reminders import MAX_ATTEMPTS, claim_due_reminders
from webapp.models.reminders import ReminderFiring
from workers import reminders
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.token import TokenCache

pytestmark = pytest.mark.django_db


def due(key_: str = "k1", *, user: str = alice.user_id, conversation_type: str = "1", conversation_id: str = "",
        title: str = "drink water") -> int:
    now = datetime.now(UTC)
    return DjangoReminderStore().create(ReminderDraft(
        key=key_, tenant_id="t1", user_id=user, conversation_id=conversation_id or f"cid-{user}",
        conversation_type=conversation_type, title=title, event_at=now - timedelta(seconds=1), rrule=None,
        reminder_offset=timedelta(0), timezone="Asia/Shanghai", lang="en",
    )).id


def firing_of(reminder_id: int) -> ReminderFiring:
    return ReminderFiring.objects.get(reminder_id=reminder_id)


def test_a_due_reminder_is_sent_to_the_users_one_to_one_chat_once(sandbox_client, sandbox_settings):
    reminder_id = due(user=alice.user_id)
    report = reminders.sweep()
    assert report["claimed"] == 1 and report["sent"] == 1
    [sent] = sandbox_client.replies()
    assert sent["via"] == "batchSend"
    assert sent["user_ids"] == [alice.user_id]
    assert "drink water" in sent["param"]["content"]
    assert firing_of(reminder_id).delivered_at is not None
    assert reminders.sweep()["claimed"] == 0
    assert len(sandbox_client.replies()) == 1


def test_a_group_reminder_goes_to_the_group(sandbox_client, sandbox_settings):
    group = bob.send(sandbox_client, "hi", conversation_type="2")["conversationId"]
    due(user=bob.user_id, conversation_type="2", conversation_id=group)
    reminders.sweep()
    sent = sandbox_client.replies(via="groupSend")
    assert [r["conversation_id"] for r in sent] == [group]


def test_a_crash_between_claim_and_send_is_sent_later_exactly_once(sandbox_client, sandbox_settings, resources):
    reminder_id = due()
    claim_due_reminders()  # the sweeper died right after committing the claim
    resources.set(REMINDER_RESEND_AFTER_SECONDS="0")
    report = reminders.sweep()
    assert report["resent"] == 1 and report["sent"] == 1
    assert len(sandbox_client.replies()) == 1
    assert firing_of(reminder_id).delivered_at is not None
    reminders.sweep()
    assert len(sandbox_client.replies()) == 1


def test_a_crash_after_the_send_but_before_the_record_only_records(sandbox_client, sandbox_settings, resources):
    reminder_id = due()
    [firing] = claim_due_reminders()
    resources.current.redis.set(reminders.marker_key(firing["delivery_key"]), reminders.SENT)
    assert reminders.deliver_firing(resources.current.dingtalk, firing) == "already_sent"
    assert sandbox_client.replies() == []
    assert firing_of(reminder_id).delivered_at is not None


def test_a_send_interrupted_midway_is_flagged_unknown_and_never_resent(sandbox_client, sandbox_settings, resources):
    reminder_id = due()
    [firing] = claim_due_reminders()
    marker = reminders.marker_key(firing["delivery_key"])
    resources.current.redis.set(marker, f"sending:{time.time()}")
    assert reminders.deliver_firing(resources.current.dingtalk, firing) == "in_flight"  # someone is sending it now
    resources.current.redis.set(marker, f"sending:{time.time() - 3600}")
    assert reminders.deliver_firing(resources.current.dingtalk, firing) == "unknown"
    assert sandbox_client.replies() == []
    row = firing_of(reminder_id)
    assert row.delivered_at is None and row.attempts == MAX_ATTEMPTS and "unknown" in row.error


def test_a_failed_send_is_retried_after_a_backoff_and_sent_once(sandbox_client, sandbox_settings, resources):
    reminder_id = due()
    [firing] = claim_due_reminders()
    endpoint = f"http://127.0.0.1:{free_port()}"  # DingTalk unreachable
    down = DingTalkAPI(httpx.Client(timeout=1), endpoint, "id", "secret")
    down.tokens = TokenCache(resources.current.redis, resources.current.key("dingtalk:token:down"), down.fetch_token)
    assert reminders.deliver_firing(down, firing) == "failed"
    row = firing_of(reminder_id)
    assert row.attempts == 1 and row.delivered_at is None and row.error
    assert reminders.deliver_firing(resources.current.dingtalk, firing) == "later"  # still backing off
    later = time.time() + reminders.RETRY_BACKOFF_MAX_SECONDS + 1
    assert reminders.deliver_firing(resources.current.dingtalk, firing, now=later) == "sent"
    assert reminders.deliver_firing(resources.current.dingtalk, firing, now=later) == "already_sent"
    assert len(sandbox_client.replies()) == 1


def test_a_send_dingtalk_refuses_for_good_is_not_retried(sandbox_client, sandbox_settings, resources):
    resources.set(DINGTALK_ROBOT_CODE="not-our-robot")
    reminder_id = due()
    assert reminders.sweep()["failed"] == 1
    row = firing_of(reminder_id)
    assert row.attempts == MAX_ATTEMPTS and "InvalidParameter.RobotCode" in row.error
    assert sandbox_client.replies() == []
