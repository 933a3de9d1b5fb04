"""AuditLog: insert-only, hash-chained record of every audited change (等保2.0 level 3)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import models


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:  # pragma: no cover - guarded by the trigger too
        raise PermissionError("the audit log is insert-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is insert-only")


class AuditLog(models.Model):
    """One audited event; `entry_hash` covers its content and the previous row's hash."""

    GENESIS = "0" * 64

    created_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=256, help_text="who: admin username, 'system', or a user id")
    action = models.CharField(max_length=128, db_index=True)
    tenant_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    target_type = models.CharField(max_length=128, blank=True, default="")
    target_id = models.CharField(max_length=256, blank=True, default="", db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    objects = AuditLogQuerySet.as_manager()

    class Meta:
        app_label = "webapp"
        ordering = ["id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("the audit log is insert-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("the audit log is insert-only")

    def content(self) -> dict[str, Any]:
        """The hashed fields, as canonical JSON primitives."""
        return {
            "created_at": self.created_at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "tenant_id": self.tenant_id,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "before": self.before,
            "after": self.after,
            "detail": self.detail,
        }

    def compute_hash(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256((self.prev_hash + canonical).encode("utf-8")).hexdigest()

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor} on {self.target_type}:{self.target_id}"
