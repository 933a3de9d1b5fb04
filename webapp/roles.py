"""三员分立: the three operator roles (system admin, security admin, auditor), their permissions, and checks.

- system admin (系统管理员): runs the bot — skills, settings, documents, profiles, routing, reminders,
  dead-letter replays; never reads or changes the audit log, never manages accounts.
- security admin (安全管理员): the only one who manages operator accounts, roles, TOTP devices and
  lockouts; sees nothing of the bot's data.
- auditor (审计员): reads the audit log and the message traces (records, dead letters, login
  records); changes nothing.

A role is a Django group whose permissions `sync_roles` keeps as defined here (run after every
migrate). The audit log and the account pages check the role itself, not permissions, so a
superuser flag does not open them; an account holds at most one role.
"""

from __future__ import annotations

import enum
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

# webapp models the system admin does not get: the audit log is the auditor's, read-only.
_NOT_FOR_OPERATORS = {"auditlog"}


class Role(enum.StrEnum):
    SYSTEM_ADMIN = "system_admin"
    SECURITY_ADMIN = "security_admin"
    AUDITOR = "auditor"

    @property
    def label(self) -> str:
        return {"system_admin": "系统管理员 system admin", "security_admin": "安全管理员 security admin",
                "auditor": "审计员 auditor"}[self.value]


def role_permissions(role: Role) -> Q:
    """The permissions a role's group holds (a filter on Permission)."""
    if role is Role.SYSTEM_ADMIN:
        return (Q(content_type__app_label="webapp") & ~Q(content_type__model__in=_NOT_FOR_OPERATORS)
                | Q(content_type__app_label="django_celery_beat"))
    if role is Role.SECURITY_ADMIN:
        return (Q(content_type__app_label="auth", content_type__model__in=("user", "group"))
                | Q(content_type__app_label="auth", codename="view_permission")
                | Q(content_type__app_label="otp_totp")
                | Q(content_type__app_label="axes", codename__in=("view_accessattempt", "delete_accessattempt")))
    return (Q(content_type__app_label="webapp", codename__in=(
                "view_auditlog", "view_messagerecord", "view_deadletter"))
            | Q(content_type__app_label="axes", codename__in=("view_accesslog", "view_accessfailurelog")))


def sync_roles(using: str = "default") -> dict[str, list[str]]:
    """Create the three groups and set each one's permissions to its definition; returns what
    changed ({role: [added or removed codename, ...]}), {} when nothing did."""
    changed: dict[str, list[str]] = {}
    with transaction.atomic(using=using):
        for role in Role:
            group, _ = Group.objects.using(using).get_or_create(name=role.value)
            wanted = set(Permission.objects.using(using).filter(role_permissions(role)).values_list("pk", flat=True))
            held = set(group.permissions.values_list("pk", flat=True))
            if wanted != held:
                group.permissions.set(wanted)
                diff = Permission.objects.using(using).filter(pk__in=wanted ^ held).values_list("pk", "codename")
                changed[role.value] = sorted(f"{'+' if pk in wanted else '-'}{code}" for pk, code in diff)
    return changed


def roles_of(user: Any) -> frozenset[Role]:
    """The roles an authenticated user holds (cached on the user object for the request)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_dtbot_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(r for r in Role if r.value in names)
        user._dtbot_roles = cached
    return cached


def has_role(user: Any, role: Role) -> bool:
    return bool(getattr(user, "is_staff", False)) and role in roles_of(user)
