"""AuditLog: insert-only, HMAC-chained record of every audited event (等保2.0 level 3); AuditAction names them."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.db import models


class AuditAction(models.TextChoices):
    """Every event the audit log records; `record_audit` takes nothing else (docs/security.md maps
    them to the 等保2.0 audit items)."""

    # operators: sign-in and the accounts themselves
    ADMIN_LOGIN = "admin.login"
    ADMIN_LOGOUT = "admin.logout"
    ADMIN_LOGIN_FAILED = "admin.login_failed"
    ADMIN_LOCKED_OUT = "admin.locked_out"
    OPERATOR_SAVE = "operator.save"  # an admin account created or changed (fields, roles, permissions)
    OPERATOR_DELETE = "operator.delete"
    OPERATOR_PASSWORD = "operator.password"
    OPERATOR_OTP_DEVICE = "operator.otp_device"
    ROLE_SAVE = "role.save"  # a group (role) and its permissions
    ROLE_DELETE = "role.delete"
    ROLE_SYNC = "role.sync"  # the built-in roles brought to their defined permissions (migrate)
    # configuration
    SKILL_SETTING_UPDATE = "skill_setting.update"
    ADMIN_SETTING_UPDATE = "admin_setting.update"
    SKILL_SETTING_ROLLBACK = "skill_setting.rollback"  # an earlier version re-applied (restored_from)
    ADMIN_SETTING_ROLLBACK = "admin_setting.rollback"
    REMOTE_SKILL_SAVE = "remote_skill.save"
    REMOTE_SKILL_DELETE = "remote_skill.delete"
    KEYS_ROTATE = "keys.rotate"  # every stored secret re-encrypted under the newest FIELD_ENCRYPTION_KEYS key
    PROFILE_UPDATE = "profile.update"
    # documents and their access rules
    DOCUMENT_COLLECTION_SAVE = "document_collection.save"
    DOCUMENT_COLLECTION_DELETE = "document_collection.delete"
    DOCUMENT_UPLOAD = "document.upload"
    DOCUMENT_SAVE = "document.save"
    DOCUMENT_DELETE = "document.delete"
    # routing data
    INTENT_EXAMPLE_SEED = "intent_example.seed"
    INTENT_EXAMPLE_IMPORT = "intent_example.import"
    INTENT_EXAMPLE_SAVE = "intent_example.save"
    INTENT_EXAMPLE_DELETE = "intent_example.delete"
    ROUTER_TRAIN = "router.train"
    ROUTER_ACTIVATE = "router.activate"
    ROUTED_TURN_RELABEL = "routed_turn.relabel"
    # people's data
    REMINDER_CANCEL = "reminder.cancel"  # by an operator (admin)
    REMINDER_CANCEL_BY_USER = "reminder.cancel_by_user"  # by its owner, through the schedule skill
    USER_EXPORT = "user.export"
    USER_ERASE = "user.erase"
    RETENTION_PURGE = "retention.purge"
    # the pipeline
    MESSAGE_DATA_FLOW = "message.data_flow"  # one per answered message: skill, recipients, PII classes, channel
    PIPELINE_EXCEPTION = "pipeline.exception"  # one per failure: msgId, stage, type, stack digest
    DEAD_LETTER_REPLAY = "dead_letter.replay"
    # the audit trail itself
    AUDIT_VERIFY = "audit.verify"
    AUDIT_ARCHIVE = "audit.archive"
    AUDIT_RESTORE = "audit.restore"


class AuditLogQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:  # pragma: no cover - guarded by the trigger too
        raise PermissionError("the audit log is insert-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("the audit log is insert-only")


class AuditLog(models.Model):
    """One audited event; `entry_hash` is an HMAC over its content and the previous row's hash."""

    GENESIS = "0" * 64
    # "sha256": rows written before the chain was keyed (verified as a prefix only);
    # "hmac-sha256": keyed by AUDIT_HMAC_KEY, which never enters the database.
    LEGACY_SCHEME = "sha256"
    SCHEME = "hmac-sha256"

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
    hash_scheme = models.CharField(max_length=16, default=SCHEME)

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

    def canonical(self) -> bytes:
        text = json.dumps(self.content(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return (self.prev_hash + text).encode("utf-8")

    def compute_hash(self, key: bytes) -> str:
        """The row's hash under its scheme: HMAC-SHA256 with `key`, or the legacy plain SHA-256."""
        if self.hash_scheme == self.LEGACY_SCHEME:
            return hashlib.sha256(self.canonical()).hexdigest()
        return hmac.new(key, self.canonical(), hashlib.sha256).hexdigest()

    def to_archive(self) -> dict[str, Any]:
        """The row as one archive line: every stored field, so a restore can re-verify it."""
        return {"id": self.pk, **self.content(), "prev_hash": self.prev_hash,
                "entry_hash": self.entry_hash, "hash_scheme": self.hash_scheme}

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor} on {self.target_type}:{self.target_id}"
