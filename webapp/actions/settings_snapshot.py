"""The skill settings, admin knobs and remote skills as plain data, read at one moment (what the
workers' per-process settings cache holds; they never read these models themselves)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from conf import redaction
from skills import registry
from webapp.crypto import DecryptionError, decrypt_text, open_config
from webapp.knobs import KNOBS
from webapp.models.skills import ALL_TENANTS as ALL_TENANTS  # re-exported: the "every tenant" row
from webapp.models.skills import AdminSetting, RemoteSkill, SkillSetting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteSpec:
    name: str
    url: str
    intents: tuple[str, ...]
    timeout_seconds: float
    token: str
    enabled: bool
    description: str
    version: int


@dataclass
class Snapshot:
    """Everything the pipeline needs to know about skills, as read at one moment."""

    skills: dict[tuple[str, str], tuple[bool, dict[str, Any]]] = field(default_factory=dict)
    # Kill switches: (tenant or *, conversation, skill) → on/off in that conversation only.
    conversations: dict[tuple[str, str, str], bool] = field(default_factory=dict)
    knobs: dict[str, Any] = field(default_factory=dict)
    remotes: dict[str, RemoteSpec] = field(default_factory=dict)

    def setting(self, tenant_id: str, skill: str) -> tuple[bool, dict[str, Any]]:
        return self.skills.get((tenant_id, skill)) or self.skills.get((ALL_TENANTS, skill)) or (True, {})

    def enabled_in(self, tenant_id: str, skill: str, conversation_id: str = "") -> bool:
        """Whether the settings let `skill` answer in this conversation: its kill switch there (the
        tenant's, then the * one) decides, else the tenant's setting."""
        if conversation_id:
            for tenant in (tenant_id, ALL_TENANTS):
                switch = self.conversations.get((tenant, conversation_id, skill))
                if switch is not None:
                    return switch
        return self.setting(tenant_id, skill)[0]

    def knob(self, key: str) -> Any:
        value = self.knobs.get(key)
        return KNOBS[key].default if value is None else value

    def skill_knobs(self, skill: str) -> dict[str, Any]:
        """{Config field: value} of the admin knobs set for this skill (e.g. llm.temperature)."""
        return {k.field: self.knobs[key] for key, k in KNOBS.items()
                if k.skill == skill and self.knobs.get(key) is not None}


def _secret_keys(skill: str) -> frozenset[str]:
    return registry.skill_class(skill).Config.secret_keys() if skill in registry.SKILLS else frozenset()


def read_snapshot() -> Snapshot:
    """Three small queries; secrets are decrypted here, once per change."""
    snap = Snapshot()
    for row in SkillSetting.objects.all():
        if row.conversation_id:
            snap.conversations[(row.tenant_id, row.conversation_id, row.skill)] = row.enabled
        else:
            try:
                config = open_config(row.config or {})
            except DecryptionError:
                log.error("skill setting %s: cannot decrypt a secret (key dropped before rotate_keys?); "
                          "its overrides are ignored", row.scope)
                config = {}
            redaction.remember(*(str(config[k]) for k in _secret_keys(row.skill) if config.get(k)))
            snap.skills[(row.tenant_id, row.skill)] = (row.enabled, config)
    snap.knobs = dict(AdminSetting.objects.values_list("key", "value"))
    for r in RemoteSkill.objects.all():
        try:
            token = decrypt_text(r.token_encrypted)
        except DecryptionError:
            log.error("remote skill %s: cannot decrypt its token (FIELD_ENCRYPTION_KEY changed?); disabled", r.name)
            continue
        redaction.remember(token)  # from now on no log line of this process shows it
        snap.remotes[r.name] = RemoteSpec(r.name, r.url, tuple(r.intents or ()), r.timeout_seconds, token,
                                          r.enabled, r.description, r.version)
    return snap
