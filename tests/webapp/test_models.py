"""Profiles are unique per tenant and staff id (or sender id without one); records per msgId."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from testkit.personas import alice, bob
from webapp.actions.profiles import do_upsert_profile
from webapp.actions.records import do_claim_record, epoch_to_datetime
from webapp.models import MessageRecord, UserProfile

pytestmark = pytest.mark.django_db


def test_one_profile_per_staff_id_per_tenant():
    UserProfile.objects.create(tenant_id="t", staff_id=alice.staff_id)
    UserProfile.objects.create(tenant_id="other", staff_id=alice.staff_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserProfile.objects.create(tenant_id="t", staff_id=alice.staff_id)


def test_people_without_a_staff_id_are_unique_by_sender_id():
    UserProfile.objects.create(tenant_id="t", sender_id="$:x")
    UserProfile.objects.create(tenant_id="t", sender_id="$:y")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserProfile.objects.create(tenant_id="t", sender_id="$:x")


def test_upsert_needs_some_id():
    with pytest.raises(ValueError):
        do_upsert_profile("t", "", "", "nobody")


def test_upsert_defaults_locale_and_keeps_admin_edits():
    profile = do_upsert_profile("t", bob.staff_id, bob.sender_id, bob.nick)
    assert profile.locale == "zh-CN"
    UserProfile.objects.filter(pk=profile.pk).update(department="HR", locale="en-US")
    again = do_upsert_profile("t", bob.staff_id, bob.sender_id, "Bobby")
    assert (again.pk, again.nick, again.department, again.locale) == (
        profile.pk, "Bobby", "HR", "en-US")


def test_a_record_per_msg_id_is_the_claim_backstop():
    assert do_claim_record("m1", "run-a", {"tenant_id": "t"}) is None
    assert do_claim_record("m1", "run-b", {"tenant_id": "t"}) == "run-a"
    assert MessageRecord.objects.filter(msg_id="m1").count() == 1


def test_epochs_in_seconds_and_milliseconds_become_the_same_datetime():
    assert epoch_to_datetime(1_700_000_000.5) == epoch_to_datetime(1_700_000_000_500)
    assert epoch_to_datetime(None) is None
