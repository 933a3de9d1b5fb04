"""Profiles are edited in admin through an audited action that also invalidates skill-data caches."""

from __future__ import annotations

import pytest
from django.urls import reverse

from testkit.personas import alice, bob
from webapp.actions.profiles import do_update_profile
from webapp.models import AuditLog, UserProfile
from workers.skill_settings import version_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("admin", "a@example.com", None))
    return client


def test_an_admin_edit_is_saved_audited_and_bumps_the_cache_version(staff_client, worker_settings, redis_conn,
                                                                    django_capture_on_commit_callbacks):
    profile = UserProfile.objects.create(tenant_id="t", staff_id=alice.staff_id, nick=alice.nick)
    url = reverse("admin:webapp_userprofile_change", args=[profile.pk])
    form = {"nick": "Alice W.", "department": "Finance", "roles": '["hr"]', "locale": "en-US",
            "timezone": "Europe/Berlin"}
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    profile.refresh_from_db()
    assert (profile.department, profile.roles, profile.locale, profile.timezone) == (
        "Finance", ["hr"], "en-US", "Europe/Berlin")
    assert profile.snapshot()["timezone"] == "Europe/Berlin"
    row = AuditLog.objects.get(action="profile.update")
    assert row.actor == "admin" and sorted(row.detail["fields"]) == ["department", "locale", "nick", "roles",
                                                                      "timezone"]
    assert "Finance" not in str(row.content())  # names of fields, not their values
    assert redis_conn.get(version_key()) == "1"


def test_ids_are_not_editable_and_profiles_are_not_deleted_in_admin(staff_client):
    profile = UserProfile.objects.create(tenant_id="t", staff_id=bob.staff_id)
    with pytest.raises(ValueError, match="not editable"):
        do_update_profile(profile, {"staff_id": alice.staff_id}, actor="admin")  # taking over alice's identity
    page = staff_client.get(reverse("admin:webapp_userprofile_change", args=[profile.pk])).content.decode()
    assert 'name="staff_id"' not in page
    assert staff_client.get(reverse("admin:webapp_userprofile_delete", args=[profile.pk])).status_code == 403


def test_an_unchanged_save_writes_no_audit_row(worker_settings):
    profile = UserProfile.objects.create(tenant_id="t", staff_id=bob.staff_id, nick=bob.nick)
    assert do_update_profile(profile, {"nick": bob.nick}, actor="admin") == []
    assert not AuditLog.objects.exists()
