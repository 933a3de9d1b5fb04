"""Re-encrypt every stored secret under the newest FIELD_ENCRYPTION_KEYS key (rotate_keys), audited.

Row by row, each in its own short transaction with the row locked: workers keep reading (every
listed key decrypts), a concurrent admin save waits for one row only. Plaintext secrets from before
sealing (a skill Config's repr=False fields) are sealed on the way. Values no listed key opens are
counted as failures and left alone (the command then exits 1: do not drop the old key yet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from webapp.actions import versions
from webapp.actions.audit import record_audit
from webapp.actions.skills import secret_keys
from webapp.crypto import DecryptionError, rotate_config, rotate_text, seal_config
from webapp.models.audit import AuditAction
from webapp.models.skills import RemoteSkill, SettingVersion, SkillSetting


@dataclass
class RotationReport:
    rotated: int = 0  # values re-encrypted under the newest key
    sealed: int = 0  # plaintext secrets encrypted for the first time
    failed: list[str] = field(default_factory=list)  # "<table>#<id>" that no listed key opens

    def as_detail(self) -> dict[str, Any]:
        return {"rotated": self.rotated, "sealed": self.sealed, "failed": self.failed[:50]}


def _rows() -> Iterator[tuple[str, type[Any], int]]:
    for model in (RemoteSkill, SkillSetting, SettingVersion):
        for pk in model.objects.order_by("pk").values_list("pk", flat=True):
            yield model.__name__, model, pk


def count_rows() -> int:
    return RemoteSkill.objects.count() + SkillSetting.objects.count() + SettingVersion.objects.count()


def _rotated_config(skill: str, config: dict[str, Any], report: RotationReport) -> dict[str, Any]:
    secret = secret_keys(skill)
    plain = sum(1 for k in secret if isinstance(config.get(k), str) and config[k] and
                not str(config[k]).startswith("fernet:"))
    out, n = rotate_config(seal_config(config, secret))
    report.rotated += n - plain
    report.sealed += plain
    return out


def _rotate_one(model: type[Any], pk: int, report: RotationReport) -> None:
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=pk).first()
        if row is None:
            return
        if isinstance(row, RemoteSkill):
            if row.token_encrypted:
                row.token_encrypted = rotate_text(row.token_encrypted)
                row.save(update_fields=["token_encrypted"])
                report.rotated += 1
        elif isinstance(row, SkillSetting):
            if row.config:
                row.config = _rotated_config(row.skill, dict(row.config), report)
                row.save(update_fields=["config"])
        elif isinstance(row, SettingVersion):
            state = dict(row.state or {})
            if state.get("config") and "skill" in state:
                state["config"] = _rotated_config(str(state["skill"]), dict(state["config"]), report)
                # a version's state is its content, unchanged: only the envelope of its secrets is new
                SettingVersion.objects.filter(pk=pk).update(state=state)


def do_rotate_keys(actor: str, advance: Callable[[int], Any] | None = None) -> RotationReport:
    """Re-encrypt every stored secret under the newest key; one audit row with the counts."""
    report = RotationReport()
    for name, model, pk in _rows():
        try:
            _rotate_one(model, pk, report)
        except DecryptionError:
            report.failed.append(f"{name}#{pk}")
        if advance is not None:
            advance(1)
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.KEYS_ROTATE, target_type="field_encryption_keys",
                     target_id="newest", detail=report.as_detail())
        versions.publish_on_commit(versions.SETTINGS)
    return report
