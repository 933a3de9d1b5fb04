"""The reminder sweep against the DingTalk sandbox: proactive sends, once per firing, crash windows."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from conf.settings import get_settings
from skills.schedule.store import ReminderDraft
from testkit.services import free_port
from webapp.models.reminders import ReminderFiring
from webapp.actions.reminder_store import DjangoReminderStore
from webapp.actions.reminders import MAX_ATTEMPTS, claim_due_reminders
from workers import reminders, resources
from workers.resources import dingtalk_api
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.token import TokenCache
from workers.resources import key, redis_client
from testkit.personas import alice, bob

pytestmark = pytest.mark.django_db


def due(key_: str = "k1", *, user: str = alice.user_id, conversation_type: str = "1", conversation_id: str = "",
        title: str = "drink water") -> int:
    now = datetime.now(timezone.utc)
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


def test_a_crash_between_claim_and_send_is_sent_later_exactly_once(sandbox_client, sandbox_settings, monkeypatch):
    reminder_id = due()
    claim_due_reminders()  # the sweeper died right after committing the claim
    monkeypatch.setenv("REMINDER_RESEND_AFTER_SECONDS", "0")
    get_settings.cache_clear()
    report = reminders.sweep()
    assert report["resent"] == 1 and report["sent"] == 1
    assert len(sandbox_client.replies()) == 1
    assert firing_of(reminder_id).delivered_at is not None
    reminders.sweep()
    assert len(sandbox_client.replies()) == 1


def test_a_crash_after_the_send_but_before_the_record_only_records(sandbox_client, sandbox_settings):
    reminder_id = due()
    [firing] = claim_due_reminders()
    redis_client().set(reminders.marker_key(firing["delivery_key"]), reminders.SENT)
    assert reminders.deliver_firing(dingtalk_api(), firing) == "already_sent"
    assert sandbox_client.replies() == []
    assert firing_of(reminder_id).delivered_at is not None


def test_a_send_interrupted_midway_is_flagged_unknown_and_never_resent(sandbox_client, sandbox_settings):
    reminder_id = due()
    [firing] = claim_due_reminders()
    marker = reminders.marker_key(firing["delivery_key"])
    redis_client().set(marker, f"sending:{time.time()}")
    assert reminders.deliver_firing(dingtalk_api(), firing) == "in_flight"  # someone is sending it now
    redis_client().set(marker, f"sending:{time.time() - 3600}")
    assert reminders.deliver_firing(dingtalk_api(), firing) == "unknown"
    assert sandbox_client.replies() == []
    row = firing_of(reminder_id)
    assert row.delivered_at is None and row.attempts == MAX_ATTEMPTS and "unknown" in row.error


def test_a_failed_send_is_retried_after_a_backoff_and_sent_once(sandbox_client, sandbox_settings):
    reminder_id = due()
    [firing] = claim_due_reminders()
    endpoint = f"http://127.0.0.1:{free_port()}"  # DingTalk unreachable
    down = DingTalkAPI(httpx.Client(timeout=1), endpoint, "id", "secret")
    down.tokens = TokenCache(redis_client(), key("dingtalk:token:down"), down.fetch_token)
    assert reminders.deliver_firing(down, firing) == "failed"
    row = firing_of(reminder_id)
    assert row.attempts == 1 and row.delivered_at is None and row.error
    assert reminders.deliver_firing(dingtalk_api(), firing) == "later"  # still backing off
    later = time.time() + reminders.RETRY_BACKOFF_MAX_SECONDS + 1
    assert reminders.deliver_firing(dingtalk_api(), firing, now=later) == "sent"
    assert reminders.deliver_firing(dingtalk_api(), firing, now=later) == "already_sent"
    assert len(sandbox_client.replies()) == 1


def test_a_send_dingtalk_refuses_for_good_is_not_retried(sandbox_client, sandbox_settings, monkeypatch):
    monkeypatch.setenv("DINGTALK_ROBOT_CODE", "not-our-robot")
    get_settings.cache_clear()
    resources.reset_clients()
    reminder_id = due()
    assert reminders.sweep()["failed"] == 1
    row = firing_of(reminder_id)
    assert row.attempts == MAX_ATTEMPTS and "InvalidParameter.RobotCode" in row.error
    assert sandbox_client.replies() == []
