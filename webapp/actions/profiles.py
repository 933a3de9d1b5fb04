"""Actions on user profiles: auto-create from the sender of a message; audited edits from admin."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from webapp.actions import versions
from webapp.actions.audit import record_audit
from webapp.models import UserProfile
from webapp.models.audit import AuditAction

# What an admin may change; the ids come from DingTalk and stay as they are.
EDITABLE_FIELDS = ("nick", "department", "roles", "locale", "timezone")


def do_upsert_profile(tenant_id: str, staff_id: str, sender_id: str, nick: str) -> UserProfile:
    """The profile of this sender (keyed by staff id, else sender id); created on first contact.

    Only the display name and the sender id follow DingTalk; the rest is edited in admin.
    """
    if not staff_id and not sender_id:
        raise ValueError("a profile needs a staff id or a sender id")
    lookup = {"tenant_id": tenant_id, "staff_id": staff_id}
    if not staff_id:
        lookup["sender_id"] = sender_id
    # One SELECT for a known sender (no transaction around it: BEGIN/COMMIT would double the
    # round trips of every message); get_or_create inserts in its own atomic block and, when
    # two workers create the same profile at once, reads the winner's row.
    profile, created = UserProfile.objects.get_or_create(
        **lookup, defaults={"sender_id": sender_id, "nick": nick}
    )
    if not created:
        changes = {}
        if nick and profile.nick != nick:
            changes["nick"] = nick
        if sender_id and profile.sender_id != sender_id:
            changes["sender_id"] = sender_id
        if changes:
            UserProfile.objects.filter(pk=profile.pk).update(**changes)
            for field, value in changes.items():
                setattr(profile, field, value)
    return profile


def do_update_profile(profile: UserProfile, changes: dict[str, Any], actor: str) -> list[str]:
    """Apply an admin's edit and audit it in one transaction; returns the changed field names.

    The audit row names the fields, not their values: the log is insert-only, and values there
    would outlive a later erasure of the user.
    """
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        current = UserProfile.objects.select_for_update().get(pk=profile.pk)
        changed = [f for f, v in changes.items() if getattr(current, f) != v]
        if not changed:
            return []
        for field in changed:
            setattr(current, field, changes[field])
        current.save(update_fields=[*changed, "updated_at"])
        record_audit(
            actor=actor, action=AuditAction.PROFILE_UPDATE, target_type="user_profile", target_id=str(current.pk),
            tenant_id=current.tenant_id, detail={"fields": changed},
        )
        # Skills may cache profile-derived data; every process drops it once this commits.
        versions.publish_on_commit(versions.SETTINGS)
    for field in changed:
        setattr(profile, field, changes[field])
    return changed
