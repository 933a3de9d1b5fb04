"""Audited changes to skill settings, admin settings and remote skills (validated, versioned, announced)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from skills import registry
from skills.api import ConfigError
from webapp.actions import versions
from webapp.actions.audit import record_audit
from webapp.crypto import encrypt_text
from webapp.knobs import knob
from webapp.models.audit import AuditAction
from webapp.models.skills import ALL_TENANTS, AdminSetting, RemoteSkill, SkillSetting


class SettingError(ValueError):
    """A change was refused: unknown skill, config that does not fit the skill's schema..."""


def _redacted(skill: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Config for the audit row: secret fields (repr=False in the Config) show as ***."""
    secret = registry.skill_class(skill).Config.secret_keys() if skill in registry.SKILLS else frozenset()
    return {k: ("***" if k in secret and v else v) for k, v in config.items()}


def validate_skill_config(skill: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides as stored, after checking them against the skill's Config."""
    if not isinstance(config, Mapping):
        raise SettingError(f"{skill}: config must be a JSON object, got {type(config).__name__}")
    if skill in registry.SKILLS:
        try:
            registry.skill_class(skill).Config.from_dict(config)
        except ConfigError as exc:
            raise SettingError(str(exc)) from exc
        return dict(config)
    if RemoteSkill.objects.filter(name=skill).exists():
        if config:
            raise SettingError(f"{skill} is a remote skill: configure it on its RemoteSkill row, not here")
        return {}
    raise SettingError(f"unknown skill {skill!r}; built-in: {sorted(registry.SKILLS)}")


def do_update_skill_setting(
    actor: str, tenant_id: str, skill: str, enabled: bool, config: Mapping[str, Any] | None = None
) -> SkillSetting:
    """Enable/disable and configure `skill` for `tenant_id` (or * for every tenant), audited."""
    tenant_id = (tenant_id or ALL_TENANTS).strip()
    clean = validate_skill_config(skill, config or {})
    with transaction.atomic():
        row = SkillSetting.objects.select_for_update().filter(tenant_id=tenant_id, skill=skill).first()
        before = None if row is None else {"enabled": row.enabled, "config": _redacted(skill, row.config)}
        if row is None:
            row = SkillSetting(tenant_id=tenant_id, skill=skill)
        row.enabled, row.config = bool(enabled), clean
        row.version += 1
        row.updated_by = actor
        row.save()
        record_audit(
            actor=actor, action=AuditAction.SKILL_SETTING_UPDATE, target_type="skill_setting",
            target_id=f"{tenant_id}/{skill}", tenant_id=tenant_id, before=before,
            after={"enabled": row.enabled, "config": _redacted(skill, clean)},
            detail={"version": row.version},
        )
        versions.publish_on_commit(versions.SETTINGS)
    return row


def do_update_admin_setting(actor: str, key: str, value: Any) -> AdminSetting:
    """Set a runtime knob (None = back to its default), validated and audited with before/after."""
    try:
        cleaned = knob(key).clean(value)
    except ValueError as exc:
        raise SettingError(str(exc)) from exc
    with transaction.atomic():
        row = AdminSetting.objects.select_for_update().filter(key=key).first()
        before = None if row is None else row.value
        if row is None:
            row = AdminSetting(key=key)
        row.value = cleaned
        row.version += 1
        row.updated_by = actor
        row.save()
        record_audit(actor=actor, action=AuditAction.ADMIN_SETTING_UPDATE, target_type="admin_setting",
                     target_id=key, before=before, after=cleaned, detail={"version": row.version})
        versions.publish_on_commit(versions.SETTINGS)
    return row


def do_save_remote_skill(
    actor: str,
    name: str,
    *,
    url: str,
    intents: Sequence[str],
    timeout_seconds: float = 10.0,
    enabled: bool = True,
    description: str = "",
    token: str | None = None,
) -> RemoteSkill:
    """Create or change a remote skill; `token` None keeps the stored one, "" removes it."""
    intents = validate_remote_skill(name, url, intents, timeout_seconds)
    with transaction.atomic():
        row = RemoteSkill.objects.select_for_update().filter(name=name).first()
        before = None if row is None else row.snapshot()
        if row is None:
            row = RemoteSkill(name=name)
        row.url, row.intents, row.timeout_seconds = url, intents, float(timeout_seconds)
        row.enabled, row.description = bool(enabled), description
        if token is not None:
            row.token_encrypted = encrypt_text(token)
        row.version += 1
        row.updated_by = actor
        row.save()
        record_audit(actor=actor, action=AuditAction.REMOTE_SKILL_SAVE, target_type="remote_skill", target_id=name,
                     before=before, after=row.snapshot(),
                     detail={"token_changed": token is not None})
        versions.publish_on_commit(versions.SETTINGS)
    return row


def validate_remote_skill(name: str, url: str, intents: Sequence[str], timeout_seconds: float) -> list[str]:
    """The cleaned intents; SettingError on a name/intent clash, a bad URL or timeout."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name or ""):
        raise SettingError("a remote skill name is lower-case letters, digits, - and _ (at most 64)")
    if name in registry.SKILLS:
        raise SettingError(f"{name!r} is the name of a built-in skill")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("the URL must be http:// or https:// with a host")
    cleaned = [str(i).strip() for i in intents if str(i).strip()]
    if not cleaned:
        raise SettingError("a remote skill needs at least one intent")
    taken = sorted((set(cleaned) & set(registry.intent_map())) | _intents_of_other_remotes(name, cleaned))
    if taken:
        raise SettingError(f"intent(s) {taken} already belong to another skill")
    if not 0 < float(timeout_seconds) <= 110:
        raise SettingError("timeout_seconds must be in (0, 110] (below the run_skill stage limit)")
    return cleaned


def _intents_of_other_remotes(name: str, intents: Sequence[str]) -> set[str]:
    other: set[str] = set()
    for row in RemoteSkill.objects.exclude(name=name).only("intents"):
        other.update(set(row.intents or []) & set(intents))
    return other


def do_delete_remote_skill(actor: str, row: RemoteSkill) -> None:
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.REMOTE_SKILL_DELETE, target_type="remote_skill",
                     target_id=row.name, before=row.snapshot(), after=None)
        row.delete()
        versions.publish_on_commit(versions.SETTINGS)
