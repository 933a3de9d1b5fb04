"""Per-tenant (and per-conversation) skill settings, admin settings, their versions, and remote (HTTP) skills;
changed only via actions."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models

# A SkillSetting row with this tenant applies to every tenant without a row of its own.
ALL_TENANTS = "*"


class SkillSetting(models.Model):
    """Whether a skill answers in a tenant, and its Config overrides (validated by the action).

    A row with a `conversation_id` is a kill switch: it only says whether the skill answers in that
    one conversation (a group, usually), whatever the tenant's row says; it carries no config.
    """

    tenant_id = models.CharField(max_length=128, default=ALL_TENANTS,
                                 help_text="DingTalk corp id, or * for every tenant without its own row")
    skill = models.CharField(max_length=128)
    conversation_id = models.CharField(
        max_length=256, blank=True, default="",
        help_text="Empty: the whole tenant. A conversation id (cid…): on/off in that conversation only")
    enabled = models.BooleanField(default=True)
    config = models.JSONField(default=dict, blank=True,
                              help_text="Overrides of the skill's Config defaults (JSON object)")
    version = models.PositiveIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=256, blank=True, default="", editable=False)

    class Meta:
        app_label = "webapp"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "skill", "conversation_id"],
                                               name="uniq_skill_setting_scope")]
        ordering = ["skill", "tenant_id", "conversation_id"]

    @property
    def scope(self) -> str:
        """`tenant/skill`, or `tenant/skill@conversation` for a conversation's kill switch."""
        where = f"{self.tenant_id}/{self.skill}"
        return f"{where}@{self.conversation_id}" if self.conversation_id else where

    def snapshot(self) -> dict[str, object]:
        return {"tenant_id": self.tenant_id, "skill": self.skill, "conversation_id": self.conversation_id,
                "enabled": self.enabled, "config": self.config, "version": self.version}

    def __str__(self) -> str:
        where = f" in {self.conversation_id}" if self.conversation_id else ""
        return f"{self.skill} @ {self.tenant_id}{where} ({'on' if self.enabled else 'off'})"


class AdminSetting(models.Model):
    """A runtime knob (e.g. llm.system_prompt, llm.temperature, router.high_confidence), versioned."""

    key = models.CharField(max_length=128, unique=True)
    value = models.JSONField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=256, blank=True, default="", editable=False)

    class Meta:
        app_label = "webapp"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class SettingVersion(models.Model):
    """One saved state of a SkillSetting or an AdminSetting: every change adds one (insert-only), and
    a rollback re-applies an earlier one as the next version (webapp.actions.skills)."""

    skill_setting = models.ForeignKey(SkillSetting, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="versions")
    admin_setting = models.ForeignKey(AdminSetting, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="versions")
    version = models.PositiveIntegerField()
    # Skill setting: {tenant_id, skill, conversation_id, enabled, config}; admin setting: {key, value}.
    state = models.JSONField()
    actor = models.CharField(max_length=256, blank=True, default="")
    restored_from = models.PositiveIntegerField(null=True, blank=True,
                                                help_text="The version this one rolled back to")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        app_label = "webapp"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(skill_setting__isnull=False, admin_setting__isnull=True)
                | models.Q(skill_setting__isnull=True, admin_setting__isnull=False),
                name="setting_version_one_target"),
            models.UniqueConstraint(fields=["skill_setting", "version"], name="uniq_skill_setting_version"),
            models.UniqueConstraint(fields=["admin_setting", "version"], name="uniq_admin_setting_version"),
        ]

    @property
    def target(self) -> str:
        if self.skill_setting_id:
            assert self.skill_setting is not None
            return self.skill_setting.scope
        assert self.admin_setting is not None
        return self.admin_setting.key

    def __str__(self) -> str:
        return f"{self.target} v{self.version}"


class RemoteSkill(models.Model):
    """A skill served over HTTP (request = the turn dict, response = the reply dict)."""

    name = models.SlugField(max_length=64, unique=True)
    # A CharField: service names without a dot (http://crm-skill:8080/) are valid here.
    url = models.CharField(max_length=500, help_text="http(s) URL the turn is POSTed to")
    intents = models.JSONField(default=list, help_text="The intents it answers, e.g. [\"it.ticket\"]")
    description = models.TextField(blank=True, default="", help_text="Help text shown to users")
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])
    token_encrypted = models.TextField(blank=True, default="", editable=False,
                                       help_text="Bearer token, Fernet-encrypted with FIELD_ENCRYPTION_KEY")
    enabled = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=256, blank=True, default="", editable=False)

    class Meta:
        app_label = "webapp"
        ordering = ["name"]

    @property
    def has_token(self) -> bool:
        return bool(self.token_encrypted)

    def snapshot(self) -> dict[str, object]:
        """Audited view: the token never appears, only whether one is set."""
        return {"name": self.name, "url": self.url, "intents": list(self.intents or []),
                "description": self.description, "timeout_seconds": self.timeout_seconds,
                "enabled": self.enabled, "has_token": self.has_token, "version": self.version}

    def __str__(self) -> str:
        return self.name
