"""Per-user export and erasure across every store (PostgreSQL, Redis, media files), each audited.

Stores covered: user profiles, message records, dead letters, reminders (and their firings),
documents the user uploaded (by admin username = staff id), any webapp model that declares
`PERSONAL_DATA_FIELDS = {"tenant": <field>, "user": <field>}` (e.g. routing logs), and every
store registered in `webapp.actions.personal_data` (the workers register Redis sessions, card
owners, tap-to-send buttons and the media files users sent; both refuse to run while one is
missing). The audit row of an export or erasure names the subject by a pseudonymous reference
(HMAC of tenant and staff id, keyed from AUDIT_HMAC_KEY), never by the id itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.db.models import Q
from django.forms.models import model_to_dict

from webapp.actions import versions
from webapp.actions.audit import audit_key, record_audit
from webapp.actions.personal_data import registry
from webapp.models import AuditLog, DeadLetter, Document, MessageRecord, Reminder, UserProfile
from webapp.models.audit import AuditAction


def subject_ref(tenant_id: str, user_id: str) -> str:
    """How audit rows name the person: an HMAC keyed from AUDIT_HMAC_KEY (never in the database), so
    whoever holds the audit rows cannot confirm a guessed staff id; the key's holder can recompute it."""
    key = hmac.new(audit_key(), b"dtbot-privacy-subject", hashlib.sha256).digest()
    return hmac.new(key, f"{tenant_id}\x1f{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


def _rows(queryset: models.QuerySet) -> list[dict[str, Any]]:
    return [model_to_dict(row) | {"id": row.pk} for row in queryset]


def _profiles(tenant_id: str, user_id: str) -> models.QuerySet:
    found = UserProfile.objects.filter(Q(staff_id=user_id) | Q(staff_id="", sender_id=user_id))
    return found.filter(tenant_id=tenant_id) if tenant_id else found


def _records(tenant_id: str, user_id: str) -> models.QuerySet:
    found = MessageRecord.objects.filter(user__in=_profiles(tenant_id, user_id))
    return found.filter(tenant_id=tenant_id) if tenant_id else found


def _dead_letters(tenant_id: str, user_id: str) -> models.QuerySet:
    msg_ids = list(_records(tenant_id, user_id).values_list("msg_id", flat=True))
    mine = Q(payload__turn__user_id=user_id) | Q(payload__sender_staff_id=user_id)
    found = DeadLetter.objects.filter(Q(msg_id__in=msg_ids) | mine)
    if tenant_id:
        found = found.filter(Q(msg_id__in=msg_ids) | Q(payload__turn__tenant_id=tenant_id)
                             | Q(payload__tenant_id=tenant_id))
    return found


def _reminders(tenant_id: str, user_id: str) -> models.QuerySet:
    found = Reminder.objects.filter(user_id=user_id)
    return found.filter(tenant_id=tenant_id) if tenant_id else found


def _documents(user_id: str) -> models.QuerySet:
    return Document.objects.filter(uploaded_by__username=user_id)


def _declared_models() -> list[type[models.Model]]:
    """Webapp models that name their tenant and user fields (PERSONAL_DATA_FIELDS)."""
    return [m for m in apps.get_app_config("webapp").get_models() if hasattr(m, "PERSONAL_DATA_FIELDS")]


def _declared(model: type[models.Model], tenant_id: str, user_id: str) -> models.QuerySet:
    if not user_id:  # an empty id would match every row without an owner (e.g. seeded examples)
        return model._default_manager.none()
    fields = model.PERSONAL_DATA_FIELDS  # type: ignore[attr-defined]
    found = model._default_manager.filter(**{fields["user"]: user_id})
    return found.filter(**{fields["tenant"]: tenant_id}) if tenant_id and fields.get("tenant") else found


def _tenants(tenant_id: str, user_id: str) -> list[str]:
    """The tenants this person appears in (files and Redis keys are per tenant)."""
    if tenant_id:
        return [tenant_id]
    found = set(_profiles("", user_id).values_list("tenant_id", flat=True))
    found |= set(_reminders("", user_id).values_list("tenant_id", flat=True))
    return sorted(found)


def collect(tenant_id: str, user_id: str, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Everything stored about the person, as JSON primitives; `progress` is told (steps done, steps
    found): the database first, then each registered store."""
    stores = registry.stores()  # before anything is read: refuse an export that would be partial
    step = progress or (lambda done, more: None)
    step(0, 1 + len(stores))
    tenants = _tenants(tenant_id, user_id)
    profiles = _profiles(tenant_id, user_id)
    data: dict[str, Any] = {
        "user_id": user_id,
        "tenants": tenants,
        "postgresql": {
            "profiles": _rows(profiles),
            "message_records": _rows(_records(tenant_id, user_id)),
            "dead_letters": _rows(_dead_letters(tenant_id, user_id)),
            "reminders": [
                {**row, "firings": _rows(Reminder.objects.get(pk=row["id"]).firings.all())}
                for row in _rows(_reminders(tenant_id, user_id))
            ],
            "documents_uploaded": [
                {k: row[k] for k in ("id", "title", "collection", "status", "sha256")}
                for row in _rows(_documents(user_id))
            ],
            "audit_rows_about_profile": _rows(AuditLog.objects.filter(
                target_type="user_profile", target_id__in=[str(pk) for pk in profiles.values_list("pk", flat=True)]
            )),
            **{m._meta.model_name: _rows(_declared(m, tenant_id, user_id)) for m in _declared_models()},
        },
    }
    step(1, 0)
    for store in stores:
        *sections, leaf = store.name.split(".")
        where = data
        for section in sections:
            where = where.setdefault(section, {})
        where[leaf] = [item for t in tenants for item in store.export_user(t, user_id)]
        step(1, 0)
    return data


def _counts(data: dict[str, Any]) -> dict[str, int]:
    counts = {f"postgresql.{k}": len(v) for k, v in data["postgresql"].items()}
    counts.update({store.name: len(_at(data, store.name)) for store in registry.stores()})
    return counts


def _at(data: dict[str, Any], name: str) -> Any:
    for part in name.split("."):
        data = data[part]
    return data


def do_export_user(tenant_id: str, user_id: str, actor: str,
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """The person's data from every store; the audit row records that (and how much) was exported."""
    data = collect(tenant_id, user_id, progress)
    with transaction.atomic():
        record_audit(
            actor=actor, action=AuditAction.USER_EXPORT, target_type="user", target_id=subject_ref(tenant_id, user_id),
            tenant_id=tenant_id, detail={"counts": _counts(data)},
        )
    return data


def do_erase_user(tenant_id: str, user_id: str, actor: str) -> dict[str, int]:
    """Delete or anonymise the person's data everywhere; returns counts per store.

    Redis and files go first (idempotent), then PostgreSQL and the audit row in one transaction:
    if anything fails, running the command again finishes the job.
    """
    stores = registry.stores()  # refuse before erasing anything rather than erase a part
    tenants = _tenants(tenant_id, user_id)
    counts = {store.name: sum(store.erase_user(t, user_id) for t in tenants) for store in stores}
    with transaction.atomic():
        records = _records(tenant_id, user_id)
        counts["postgresql.dead_letters"] = _dead_letters(tenant_id, user_id).delete()[0]
        # Records stay (they are the msgId dedup backstop) without the person or their 1:1 chat id.
        counts["postgresql.message_records"] = records.filter(conversation_type="1").update(
            user=None, conversation_id="", error="") + records.exclude(conversation_type="1").update(
            user=None, error="")
        counts["postgresql.reminders"] = _reminders(tenant_id, user_id).delete()[0]
        counts["postgresql.documents_uploaded"] = _documents(user_id).update(uploaded_by=None)
        for model in _declared_models():
            counts[f"postgresql.{model._meta.model_name}"] = _declared(model, tenant_id, user_id).delete()[0]
        counts["postgresql.profiles"] = _profiles(tenant_id, user_id).delete()[0]
        record_audit(
            actor=actor, action=AuditAction.USER_ERASE, target_type="user", target_id=subject_ref(tenant_id, user_id),
            tenant_id=tenant_id, detail={"counts": counts},
        )
        versions.publish_on_commit(versions.SETTINGS)  # cached skill data about the person goes too
    return counts
