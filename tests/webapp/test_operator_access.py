"""Operator access (三员分立): who opens which admin page, accounts changed only by security admins and audited,
password complexity, lockout after failed logins, sign-in events, idle sessions, TOTP when required."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.actions.deadletters import do_dead_letter
from webapp.actions.operators import do_save_operator
from webapp.admin.records import DeadLetterAdmin
from webapp.models import AuditLog, DeadLetter
from webapp.models.audit import AuditAction
from webapp.roles import Role, has_role

pytestmark = pytest.mark.django_db

PASSWORD = "Tr1cky-Passphrase!"
PAGES = {
    "audit": "admin:webapp_auditlog_changelist",
    "accounts": "admin:auth_user_changelist",
    "roles": "admin:auth_group_changelist",
    "skills": "admin:webapp_skillsetting_changelist",
    "records": "admin:webapp_messagerecord_changelist",
    "dead letters": "admin:webapp_deadletter_changelist",
}
OPENS = {
    Role.AUDITOR: {"audit", "records", "dead letters"},
    Role.SYSTEM_ADMIN: {"skills", "records", "dead letters"},
    Role.SECURITY_ADMIN: {"accounts", "roles"},
    None: {"skills", "records", "dead letters"},  # a superuser without a role: operations, never audit or accounts
}


def operator(username: str, role: Role | None, *, superuser: bool = False) -> User:
    user = User(username=username, is_staff=True, is_superuser=superuser)
    user.set_password(PASSWORD)
    return do_save_operator(user, "setup", groups=[Group.objects.get(name=role.value)] if role else [])


@pytest.mark.parametrize("role", list(OPENS))
def test_each_role_opens_its_pages_only(client, role):
    user = operator(f"op-{role or 'super'}", role, superuser=role is None)
    client.force_login(user)
    opened = {page for page, url in PAGES.items() if client.get(reverse(url)).status_code == 200}
    assert opened == OPENS[role]


def test_the_roles_hold_their_defined_permissions():
    def perms(role: Role) -> set[str]:
        return set(Group.objects.get(name=role.value).permissions.values_list("codename", flat=True))

    assert {"view_auditlog", "view_messagerecord", "view_deadletter"} <= perms(Role.AUDITOR)
    assert not {p for p in perms(Role.AUDITOR) if not p.startswith("view_")}
    assert "view_auditlog" not in perms(Role.SYSTEM_ADMIN) and "replay_deadletter" in perms(Role.SYSTEM_ADMIN)
    assert {"add_user", "change_user", "change_group", "add_totpdevice"} <= perms(Role.SECURITY_ADMIN)
    assert not {p for p in perms(Role.SECURITY_ADMIN) if p.endswith(("skillsetting", "auditlog", "document"))}


def test_an_account_holds_one_role_and_auditors_are_not_superusers():
    user = User(username="two-hats", is_staff=True)
    with pytest.raises(ValidationError, match="one role"):
        do_save_operator(user, "sec", groups=Group.objects.filter(name__in=[Role.AUDITOR, Role.SYSTEM_ADMIN]))
    with pytest.raises(ValidationError, match="superuser"):
        do_save_operator(User(username="root-auditor", is_staff=True, is_superuser=True), "sec",
                         groups=[Group.objects.get(name=Role.AUDITOR)])
    assert not User.objects.filter(username__in=["two-hats", "root-auditor"]).exists()


def test_the_security_admin_creates_an_account_and_it_is_audited(client):
    client.force_login(operator("sec", Role.SECURITY_ADMIN))
    response = client.post(reverse("admin:auth_user_add"), {
        "username": "newop", "password1": PASSWORD, "password2": PASSWORD, "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    created = User.objects.get(username="newop")
    row = AuditLog.objects.filter(action=AuditAction.OPERATOR_SAVE, target_id=str(created.pk)).get()
    assert row.actor == "sec" and row.detail == {"created": True} and row.before is None
    assert created.password not in str(row.content()) and PASSWORD not in str(row.content())


def test_a_role_change_is_audited_with_before_and_after():
    user = operator("op", Role.SYSTEM_ADMIN)
    do_save_operator(user, "sec", groups=[Group.objects.get(name=Role.AUDITOR)])
    row = AuditLog.objects.filter(action=AuditAction.OPERATOR_SAVE, actor="sec").get()
    assert row.before["groups"] == ["system_admin"] and row.after["groups"] == ["auditor"]
    assert has_role(User.objects.get(pk=user.pk), Role.AUDITOR)


def test_a_password_set_in_the_admin_is_audited_without_it(client):
    target = operator("op", Role.SYSTEM_ADMIN)
    client.force_login(operator("sec", Role.SECURITY_ADMIN))
    new = "An0ther-Passphrase?"
    response = client.post(reverse("admin:auth_user_password_change", args=[target.pk]),
                           {"password1": new, "password2": new, "usable_password": "true"})
    assert response.status_code == 302
    row = AuditLog.objects.filter(action=AuditAction.OPERATOR_PASSWORD).get()
    assert row.actor == "sec" and row.target_id == str(target.pk) and new not in str(row.content())


def test_only_the_replay_permission_replays_dead_letters(client):
    """The old rule let any staff user replay; now only system admins (who hold the permission) do."""
    letter = do_dead_letter("msgX==", "deliver", {"msg_id": "msgX=="}, "poison: x")
    request = RequestFactory().get("/")
    request.user = operator("aud", Role.AUDITOR)
    assert not DeadLetterAdmin(DeadLetter, admin.site).has_change_permission(request)
    client.force_login(request.user)
    client.post(reverse("admin:webapp_deadletter_changelist"),
                {"action": "replay_selected", "_selected_action": [letter.pk]})
    assert DeadLetter.objects.get(pk=letter.pk).replay_count == 0
    request.user = operator("sys", Role.SYSTEM_ADMIN)
    assert DeadLetterAdmin(DeadLetter, admin.site).has_change_permission(request)
    assert not DeadLetterAdmin(DeadLetter, admin.site).has_change_permission(request, letter)  # fields stay read-only


@pytest.mark.parametrize(("password", "ok"), [
    ("Tr1cky-Passphrase!", True),
    ("short-Pw1!", False),  # too short
    ("alllowercaseletterswithoutanything", False),  # one kind of character
    ("lowercase-and-digits-1234", True),  # three kinds
    ("123456789012345", False),  # numeric
])
def test_passwords_need_length_and_complexity(password, ok):
    if ok:
        validate_password(password)
    else:
        with pytest.raises(ValidationError):
            validate_password(password)


def login(client, username: str, password: str, **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": password, **extra})


def test_repeated_failures_lock_the_account_and_every_attempt_is_audited(client, settings):
    operator("op", Role.SYSTEM_ADMIN)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, "op", "wrong").status_code == 200  # the form again, with an error
    assert login(client, "op", "wrong").status_code == 429
    assert login(client, "op", PASSWORD).status_code == 429  # locked: even the right password
    actions = list(AuditLog.objects.filter(action__startswith="admin.").values_list("action", flat=True))
    assert actions.count(AuditAction.ADMIN_LOGIN_FAILED) >= settings.AXES_FAILURE_LIMIT
    assert AuditAction.ADMIN_LOCKED_OUT in actions and AuditAction.ADMIN_LOGIN not in actions
    failed = AuditLog.objects.filter(action=AuditAction.ADMIN_LOGIN_FAILED).first()
    assert failed.detail["username"] == "op" and failed.detail["ip"] == "127.0.0.1"
    assert "wrong" not in str(failed.content())


def test_login_and_logout_are_audited(client):
    user = operator("op", Role.SYSTEM_ADMIN)
    assert login(client, "op", PASSWORD).status_code == 302
    client.post(reverse("admin:logout"))
    rows = AuditLog.objects.filter(action__in=[AuditAction.ADMIN_LOGIN, AuditAction.ADMIN_LOGOUT])
    assert [(r.action, r.actor, r.target_id) for r in rows] == [
        (AuditAction.ADMIN_LOGIN, "op", str(user.pk)), (AuditAction.ADMIN_LOGOUT, "op", str(user.pk))]


def test_an_idle_session_ends(client, settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client.force_login(operator("op", Role.SYSTEM_ADMIN))
    index = reverse("admin:index")
    assert client.get(index).status_code == 200
    session = Session.objects.get()
    assert session.expire_date <= timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE + 5)
    Session.objects.filter(pk=session.pk).update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    assert client.get(index).status_code == 302  # back to the login page


@override_settings(ADMIN_REQUIRE_OTP=True)
def test_with_otp_required_a_password_alone_is_not_enough(client):
    user = operator("op", Role.SYSTEM_ADMIN)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    assert login(client, "op", PASSWORD).status_code == 200  # asked for the token
    assert client.get(reverse("admin:index")).status_code == 302
    client.force_login(user)  # a session that no device verified
    assert client.get(reverse("admin:index")).status_code == 302
    client.logout()
    token = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    response = login(client, "op", PASSWORD, otp_device=device.persistent_id, otp_token=f"{token:06d}")
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200
    assert login(client, "op", PASSWORD, otp_device=device.persistent_id, otp_token="000000").status_code == 200


def test_without_otp_required_the_login_form_asks_for_no_token(client):
    assert "otp_token" not in client.get(reverse("admin:login")).content.decode()


def test_the_first_security_admin_is_made_by_a_command(monkeypatch, capsys):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    monkeypatch.setattr("sys.stdin", io.StringIO("weak\n"))
    with pytest.raises(CommandError, match="too short"):
        call_command("create_operator", "first", "--role", "security_admin", "--password-stdin")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    call_command("create_operator", "first", "--role", "security_admin", "--password-stdin", "--totp")
    assert "otpauth://totp/" in capsys.readouterr().out
    user = User.objects.get(username="first")
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert AuditLog.objects.filter(action=AuditAction.OPERATOR_OTP_DEVICE, target_id=str(user.pk)).exists()
    assert has_role(user, Role.SECURITY_ADMIN) and not user.is_superuser and user.check_password(PASSWORD)
    assert AuditLog.objects.filter(action=AuditAction.OPERATOR_SAVE, target_id=str(user.pk)).exists()
