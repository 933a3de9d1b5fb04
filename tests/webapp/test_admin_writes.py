"""Every admin of our models writes only through webapp.actions (or is read-only), and read-only means
no add, no change, no delete; the reminder admin's one action, cancel, is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from testkit.personas import alice
from webapp.admin.base import ReadOnlyAdminMixin
from webapp.models import AuditLog, Reminder, ReminderFiring

pytestmark = pytest.mark.django_db

READ_ONLY = {"auditlog", "messagerecord", "deadletter", "reminder", "reminderfiring", "routedturn", "routermodel",
             "settingversion"}


def webapp_admins() -> dict[str, ModelAdmin]:
    return {str(model._meta.model_name): model_admin for model, model_admin in admin.site._registry.items()
            if model._meta.app_label == "webapp"}


def overrides(model_admin: ModelAdmin, name: str) -> bool:
    return getattr(type(model_admin), name) is not getattr(ModelAdmin, name)


def test_the_read_only_admins_share_the_mixin():
    admins = webapp_admins()
    assert READ_ONLY <= set(admins)
    assert {name for name, a in admins.items() if isinstance(a, ReadOnlyAdminMixin)} == READ_ONLY


def test_every_other_admin_saves_and_deletes_through_actions(rf: RequestFactory, admin_user):
    request = rf.get("/")
    request.user = admin_user
    for name, model_admin in webapp_admins().items():
        if name in READ_ONLY:
            continue
        assert overrides(model_admin, "save_model"), f"{name}: save_model writes without an action"
        if model_admin.has_delete_permission(request):
            assert overrides(model_admin, "delete_model") and overrides(model_admin, "delete_queryset"), \
                f"{name}: deletes without an action"


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", "o@example.com", None))
    return client


def reminder(title: str, status: str = Reminder.Status.PENDING) -> Reminder:
    soon = timezone.now() + timedelta(hours=1)
    return Reminder.objects.create(tenant_id="t", user_id=alice.user_id, title=title, event_at=soon, fire_at=soon,
                                   source_key=f"key-{title}", status=status)


def test_reminders_and_firings_cannot_be_added_edited_or_deleted_in_admin(staff_client):
    row = reminder("dentist")
    firing = ReminderFiring.objects.create(reminder=row, occurrence_at=row.event_at)
    for model, pk in (("reminder", row.pk), ("reminderfiring", firing.pk)):
        assert staff_client.get(reverse(f"admin:webapp_{model}_changelist")).status_code == 200
        assert staff_client.get(reverse(f"admin:webapp_{model}_add")).status_code == 403
        assert staff_client.get(reverse(f"admin:webapp_{model}_delete", args=[pk])).status_code == 403
    staff_client.post(reverse("admin:webapp_reminder_change", args=[row.pk]), {"title": "changed"})
    assert Reminder.objects.get(pk=row.pk).title == "dentist"


def test_cancelling_reminders_in_admin_is_audited_and_leaves_fired_ones_alone(staff_client):
    pending, fired = reminder("dentist"), reminder("done", Reminder.Status.FIRED)
    response = staff_client.post(reverse("admin:webapp_reminder_changelist"),
                                 {"action": "cancel", "_selected_action": [pending.pk, fired.pk]}, follow=True)
    assert "1 reminder(s) cancelled" in response.content.decode()
    assert Reminder.objects.get(pk=pending.pk).status == Reminder.Status.CANCELLED
    assert Reminder.objects.get(pk=fired.pk).status == Reminder.Status.FIRED
    row = AuditLog.objects.get(action="reminder.cancel")
    assert row.actor == "ops" and row.detail == {"ids": [pending.pk]}
    assert "dentist" not in str(row.content())  # the user's words stay out of the audit log


def test_the_audit_log_admin_is_read_only_and_only_for_auditors(staff_client, client, django_user_model):
    from django.contrib.auth.models import Group

    from webapp.roles import Role

    reminder("x")
    staff_client.post(reverse("admin:webapp_reminder_changelist"),
                      {"action": "cancel", "_selected_action": [Reminder.objects.get().pk]})
    row = AuditLog.objects.get(action="reminder.cancel")
    # The superuser ("ops") runs the bot but does not read the audit log (三员分立).
    assert staff_client.get(reverse("admin:webapp_auditlog_changelist")).status_code == 403
    auditor = django_user_model.objects.create_user("aud", is_staff=True)
    auditor.groups.add(Group.objects.get(name=Role.AUDITOR))
    client.force_login(auditor)
    assert client.get(reverse("admin:webapp_auditlog_changelist")).status_code == 200
    assert client.get(reverse("admin:webapp_auditlog_change", args=[row.pk])).status_code == 200
    assert client.get(reverse("admin:webapp_auditlog_add")).status_code == 403
    assert client.get(reverse("admin:webapp_auditlog_delete", args=[row.pk])).status_code == 403
    client.post(reverse("admin:webapp_auditlog_change", args=[row.pk]), {"actor": "mallory"})
    assert AuditLog.objects.get(pk=row.pk).actor == "ops"
