"""Admin lists profiles, records (read-only) and dead letters, and replays dead letters."""

from __future__ import annotations

import pytest
from django.urls import reverse

from testkit.personas import alice
from webapp.actions.deadletters import do_dead_letter
from webapp.models import DeadLetter, MessageRecord, UserProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "a@example.com", None)
    client.force_login(user)
    return client


@pytest.fixture
def rows():
    profile = UserProfile.objects.create(tenant_id="t", staff_id=alice.staff_id, nick=alice.nick)
    MessageRecord.objects.create(msg_id="msgA==", tenant_id="t", user=profile, status="replied")
    MessageRecord.objects.create(msg_id="msgB==", tenant_id="t", status="dead")
    letter = do_dead_letter("msgB==", "deliver", {"msg_id": "msgB=="}, "poison: boom")
    return profile, letter


@pytest.mark.parametrize("model", ["userprofile", "messagerecord", "deadletter"])
def test_every_model_has_an_admin_list(staff_client, rows, model):
    response = staff_client.get(reverse(f"admin:webapp_{model}_changelist"))
    assert response.status_code == 200


def test_records_are_searchable_by_msg_id_and_user(staff_client, rows):
    url = reverse("admin:webapp_messagerecord_changelist")
    assert "msgA==" in staff_client.get(url, {"q": "msgA=="}).content.decode()
    by_user = staff_client.get(url, {"q": alice.staff_id}).content.decode()
    assert "msgA==" in by_user and "msgB==" not in by_user


def test_records_are_read_only(staff_client, rows):
    record = MessageRecord.objects.get(msg_id="msgA==")
    url = reverse("admin:webapp_messagerecord_change", args=[record.pk])
    staff_client.post(url, {"status": "failed"})
    assert MessageRecord.objects.get(pk=record.pk).status == "replied"
    assert staff_client.get(reverse("admin:webapp_messagerecord_add")).status_code == 403


def test_the_admin_action_replays_dead_letters(staff_client, rows, broker_queues,
                                               worker_settings):
    _, letter = rows
    response = staff_client.post(
        reverse("admin:webapp_deadletter_changelist"),
        {"action": "replay_selected", "_selected_action": [letter.pk]},
        follow=True,
    )
    assert "Replayed 1 dead letter" in response.content.decode()
    assert DeadLetter.objects.get(pk=letter.pk).replay_count == 1
    assert [m["task"] for m in broker_queues()] == ["dtbot.pipeline.deliver"]
