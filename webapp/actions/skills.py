"""Audited changes to skill settings, admin settings and remote skills (validated, versioned, announced).

Every skill- or admin-setting change also writes a SettingVersion (the state after it), in the same
transaction; `do_rollback_setting` re-applies an earlier version's state as the next version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction

from conf.settings import get_settings
from skills import registry
from skills.api import ConfigError
from skills.remote.urlguard import Allowlist, Unresolvable, UrlRefused, check_url
from webapp.actions import versions
from webapp.actions.audit import record_audit
from webapp.crypto import MASK, encrypt_text, open_config, seal_config
from webapp.knobs import knob
from webapp.models.audit import AuditAction
from webapp.models.skills import ALL_TENANTS, AdminSetting, RemoteSkill, SettingVersion, SkillSetting


class SettingError(ValueError):
    """A change was refused: unknown skill, config that does not fit the skill's schema..."""


def secret_keys(skill: str) -> frozenset[str]:
    """The skill's Config fields declared repr=False (stored encrypted, shown as ***)."""
    return registry.skill_class(skill).Config.secret_keys() if skill in registry.SKILLS else frozenset()


def _redacted(skill: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Config for the audit row and pages: secret fields (repr=False in the Config) show as ***."""
    secret = secret_keys(skill)
    return {k: (MASK if k in secret and v else v) for k, v in config.items()}


def masked_config(skill: str, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the admin form shows: secrets as *** (saving *** back keeps the stored secret)."""
    return _redacted(skill, config or {})


def _sealed(skill: str, clean: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """`clean` as stored: a secret left as *** keeps the stored (sealed) value, the rest is encrypted."""
    secret = secret_keys(skill)
    kept = {k: (stored.get(k, "") if k in secret and v == MASK else v) for k, v in clean.items()}
    return seal_config(kept, secret)


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
    actor: str, tenant_id: str, skill: str, enabled: bool, config: Mapping[str, Any] | None = None,
    conversation_id: str = "",
) -> SkillSetting:
    """Enable/disable and configure `skill` for `tenant_id` (or * for every tenant), audited.

    With `conversation_id` the row is that conversation's kill switch: on/off there only, no config.
    """
    tenant_id = (tenant_id or ALL_TENANTS).strip()
    conversation_id = (conversation_id or "").strip()
    clean = validate_skill_config(skill, config or {})
    if conversation_id and clean:
        raise SettingError("a conversation's row only turns the skill on or off there: configure the tenant's row")
    with transaction.atomic():
        row, _ = _apply_skill_setting(actor, tenant_id, skill, conversation_id, bool(enabled), clean,
                                            action=AuditAction.SKILL_SETTING_UPDATE)
    return row


def _apply_skill_setting(
    actor: str, tenant_id: str, skill: str, conversation_id: str, enabled: bool, clean: dict[str, Any], *,
    action: AuditAction, restored_from: int | None = None,
) -> tuple[SkillSetting, SettingVersion]:
    """The row after the change, its new version and audit row (inside the caller's transaction)."""
    row = SkillSetting.objects.select_for_update().filter(
        tenant_id=tenant_id, skill=skill, conversation_id=conversation_id).first()
    before = None if row is None else {"enabled": row.enabled, "config": _redacted(skill, row.config)}
    stored = {} if row is None else dict(row.config or {})
    if row is None:
        row = SkillSetting(tenant_id=tenant_id, skill=skill, conversation_id=conversation_id)
    sealed = _sealed(skill, clean, stored)
    row.enabled, row.config = enabled, sealed
    row.version += 1
    row.updated_by = actor
    row.save()
    version = SettingVersion.objects.create(
        skill_setting=row, version=row.version, actor=actor, restored_from=restored_from,
        state={"tenant_id": tenant_id, "skill": skill, "conversation_id": conversation_id,
               "enabled": row.enabled, "config": sealed})
    detail: dict[str, Any] = {"version": row.version}
    if restored_from is not None:
        detail["restored_from"] = restored_from
    record_audit(
        actor=actor, action=action, target_type="skill_setting", target_id=row.scope, tenant_id=tenant_id,
        before=before, after={"enabled": row.enabled, "config": _redacted(skill, clean)}, detail=detail,
    )
    versions.publish_on_commit(versions.SETTINGS)
    return row, version


def do_update_admin_setting(actor: str, key: str, value: Any) -> AdminSetting:
    """Set a runtime knob (None = back to its default), validated and audited with before/after."""
    cleaned = _clean_knob(key, value)
    with transaction.atomic():
        row, _ = _apply_admin_setting(actor, key, cleaned, action=AuditAction.ADMIN_SETTING_UPDATE)
    return row


def _clean_knob(key: str, value: Any) -> Any:
    try:
        return knob(key).clean(value)
    except ValueError as exc:
        raise SettingError(str(exc)) from exc


def _apply_admin_setting(
    actor: str, key: str, cleaned: Any, *, action: AuditAction, restored_from: int | None = None,
) -> tuple[AdminSetting, SettingVersion]:
    row = AdminSetting.objects.select_for_update().filter(key=key).first()
    before = None if row is None else row.value
    if row is None:
        row = AdminSetting(key=key)
    row.value = cleaned
    row.version += 1
    row.updated_by = actor
    row.save()
    version = SettingVersion.objects.create(admin_setting=row, version=row.version, actor=actor,
                                            restored_from=restored_from, state={"key": key, "value": cleaned})
    detail: dict[str, Any] = {"version": row.version}
    if restored_from is not None:
        detail["restored_from"] = restored_from
    record_audit(actor=actor, action=action, target_type="admin_setting", target_id=key, before=before,
                 after=cleaned, detail=detail)
    versions.publish_on_commit(versions.SETTINGS)
    return row, version


def do_rollback_setting(actor: str, version: SettingVersion) -> SettingVersion:
    """Make `version`'s state the setting's current one again, as its next version (audited as a
    rollback). The state is validated as a fresh change would be: a config the skill's current
    Config no longer accepts is refused with a SettingError, and nothing changes."""
    state = dict(version.state or {})
    with transaction.atomic():
        if version.skill_setting_id is not None:
            skill = str(state["skill"])
            clean = validate_skill_config(skill, open_config(state.get("config") or {}))
            _, new = _apply_skill_setting(
                actor, str(state["tenant_id"]), skill, str(state.get("conversation_id") or ""),
                bool(state["enabled"]), clean, action=AuditAction.SKILL_SETTING_ROLLBACK, restored_from=version.version)
        else:
            key = str(state["key"])
            _, new = _apply_admin_setting(actor, key, _clean_knob(key, state.get("value")),
                                          action=AuditAction.ADMIN_SETTING_ROLLBACK, restored_from=version.version)
    return new


def redacted_state(version: SettingVersion) -> dict[str, Any]:
    """A version's state for display: secret config fields of a skill show as ***."""
    state = dict(version.state or {})
    if "config" in state and "skill" in state:
        state["config"] = _redacted(str(state["skill"]), state.get("config") or {})
    return state


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
    has_token = bool(token) if token is not None else (
        RemoteSkill.objects.filter(name=name).exclude(token_encrypted="").exists())
    intents = validate_remote_skill(name, url, intents, timeout_seconds, with_token=has_token)
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


def validate_remote_skill(name: str, url: str, intents: Sequence[str], timeout_seconds: float,
                          with_token: bool = False) -> list[str]:
    """The cleaned intents; SettingError on a name/intent clash, a bad URL or timeout."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name or ""):
        raise SettingError("a remote skill name is lower-case letters, digits, - and _ (at most 64)")
    if name in registry.SKILLS:
        raise SettingError(f"{name!r} is the name of a built-in skill")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("the URL must be http:// or https:// with a host")
    settings = get_settings()
    try:  # checked again at every call (a name may resolve elsewhere later); here to say so at once
        check_url(url, Allowlist.parse(settings.outbound_url_allowlist), with_token=with_token,
                  require_https_for_token=settings.django_secure)
    except Unresolvable:
        pass  # not resolvable from here (yet): the call-time check decides
    except UrlRefused as exc:
        raise SettingError(f"the URL is refused: {exc}") from exc
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
