"""Actions on user profiles: auto-create from the sender of a message."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from webapp.models import UserProfile


def do_upsert_profile(tenant_id: str, staff_id: str, sender_id: str, nick: str) -> UserProfile:
    """The profile of this sender (keyed by staff id, else sender id); created on first contact.

    Only the display name and the sender id follow DingTalk; the rest is edited in admin.
    """
    if not staff_id and not sender_id:
        raise ValueError("a profile needs a staff id or a sender id")
    lookup = {"tenant_id": tenant_id, "staff_id": staff_id}
    if not staff_id:
        lookup["sender_id"] = sender_id
    try:
        with transaction.atomic():
            profile, created = UserProfile.objects.get_or_create(
                **lookup, defaults={"sender_id": sender_id, "nick": nick}
            )
    except IntegrityError:
        # Two workers created the same profile at once; the other one won.
        profile, created = UserProfile.objects.get(**lookup), False
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
