"""Operator accounts, roles and sign-ins: every change and every login attempt, audited in its transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from webapp.actions.audit import record_audit
from webapp.models.audit import AuditAction
from webapp.roles import Role, sync_roles


def operator_row(user: User) -> dict[str, Any]:
    """What an account's audit row shows: flags, roles and permissions, never the password hash."""
    return {
        "username": user.username,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user.pk else [],
        "permissions": sorted(f"{a}.{c}" for a, c in user.user_permissions.values_list(
            "content_type__app_label", "codename")) if user.pk else [],
    }


def role_row(group: Group) -> dict[str, Any]:
    return {"name": group.name, "permissions": sorted(f"{a}.{c}" for a, c in group.permissions.values_list(
        "content_type__app_label", "codename")) if group.pk else []}


def check_separation(user: User, groups: Iterable[Group]) -> None:
    """三员分立: one role per account, and neither the auditor nor the security admin a superuser
    (the flag would hand them every operation)."""
    roles = {g.name for g in groups} & {r.value for r in Role}
    if len(roles) > 1:
        raise ValidationError(f"an account holds one role only (三员分立), not {sorted(roles)}")
    if user.is_superuser and roles & {Role.AUDITOR.value, Role.SECURITY_ADMIN.value}:
        raise ValidationError("an auditor or security admin cannot be a superuser (三员分立)")


def do_save_operator(user: User, actor: str, *, groups: Iterable[Group] | None = None,
                     permissions: Iterable[Permission] | None = None) -> User:
    """Create or change an operator account (fields, roles, direct permissions), audited."""
    created = user.pk is None
    before = None if created else operator_row(User.objects.get(pk=user.pk))
    with transaction.atomic():
        check_separation(user, list(groups) if groups is not None else list(user.groups.all()) if user.pk else [])
        user.save()
        if groups is not None:
            user.groups.set(groups)
        if permissions is not None:
            user.user_permissions.set(permissions)
        record_audit(actor=actor, action=AuditAction.OPERATOR_SAVE, target_type="operator",
                     target_id=str(user.pk), before=before, after=operator_row(user),
                     detail={"created": created})
    return user


def do_delete_operator(user: User, actor: str) -> None:
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.OPERATOR_DELETE, target_type="operator",
                     target_id=str(user.pk), before=operator_row(user))
        user.delete()


def do_set_password(user: User, raw_password: str, actor: str) -> None:
    """Set an operator's password (validated by the caller), audited without the password."""
    with transaction.atomic():
        user.set_password(raw_password)
        user.save(update_fields=["password"])
        do_record_password_change(user, actor)


def do_record_password_change(user: User, actor: str) -> None:
    """The audit row of a password set in this transaction (the admin's own password view)."""
    record_audit(actor=actor, action=AuditAction.OPERATOR_PASSWORD, target_type="operator",
                 target_id=str(user.pk), detail={"username": user.username})


def do_save_role(group: Group, actor: str, *, permissions: Iterable[Permission] | None = None) -> Group:
    created = group.pk is None
    before = None if created else role_row(Group.objects.get(pk=group.pk))
    with transaction.atomic():
        group.save()
        if permissions is not None:
            group.permissions.set(permissions)
        record_audit(actor=actor, action=AuditAction.ROLE_SAVE, target_type="role", target_id=str(group.pk),
                     before=before, after=role_row(group), detail={"created": created})
    return group


def do_delete_role(group: Group, actor: str) -> None:
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.ROLE_DELETE, target_type="role", target_id=str(group.pk),
                     before=role_row(group))
        group.delete()


def do_sync_roles(actor: str = "migrate") -> dict[str, list[str]]:
    """Bring the three built-in roles to their definition (webapp.roles); audited when it changed
    the permissions of a role that existed (creating them on a new database is the migration's)."""
    with transaction.atomic():
        existed = set(Group.objects.filter(name__in=[r.value for r in Role]).values_list("name", flat=True))
        changed = sync_roles()
        changed_existing = {name: diff for name, diff in changed.items() if name in existed}
        if changed_existing:
            record_audit(actor=actor, action=AuditAction.ROLE_SYNC, target_type="role", detail=changed_existing)
    return changed


def do_record_otp_device(user: User, device_name: str, actor: str, *, removed: bool = False) -> None:
    """A TOTP device added to or removed from an account (its secret never in the row)."""
    record_audit(actor=actor, action=AuditAction.OPERATOR_OTP_DEVICE, target_type="operator",
                 target_id=str(user.pk), detail={"username": user.username, "device": device_name,
                                                 "removed": removed})


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return ""
    return str(getattr(request, "axes_ip_address", "") or request.META.get("REMOTE_ADDR", ""))


def do_record_login(user: User, request: HttpRequest | None) -> None:
    record_audit(actor=user.get_username(), action=AuditAction.ADMIN_LOGIN, target_type="operator",
                 target_id=str(user.pk), detail={"ip": client_address(request),
                                                 "otp_verified": bool(getattr(user, "otp_device", None))})


def do_record_logout(user: User | None, request: HttpRequest | None) -> None:
    name = user.get_username() if user is not None else ""
    record_audit(actor=name or "anonymous", action=AuditAction.ADMIN_LOGOUT, target_type="operator",
                 target_id=str(getattr(user, "pk", "") or ""), detail={"ip": client_address(request)})


def do_record_login_failed(username: str, request: HttpRequest | None) -> None:
    record_audit(actor=username[:256] or "anonymous", action=AuditAction.ADMIN_LOGIN_FAILED,
                 target_type="operator", detail={"ip": client_address(request), "username": username[:150]})


def do_record_locked_out(username: str, ip_address: str) -> None:
    record_audit(actor=username[:256] or "anonymous", action=AuditAction.ADMIN_LOCKED_OUT,
                 target_type="operator", detail={"ip": ip_address, "username": username[:150]})
