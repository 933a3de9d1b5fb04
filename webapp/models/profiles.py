"""UserProfile: who talks to the bot, auto-created from senderStaffId (else senderId)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class UserProfile(models.Model):
    """One DingTalk user of one tenant; staff_id is empty for people outside the org."""

    tenant_id = models.CharField(max_length=128, db_index=True)
    staff_id = models.CharField(max_length=128, blank=True, default="")
    sender_id = models.CharField(max_length=256, blank=True, default="")
    nick = models.CharField(max_length=256, blank=True, default="")
    department = models.CharField(max_length=256, blank=True, default="")
    roles = models.JSONField(default=list, blank=True)
    locale = models.CharField(max_length=16, default="zh-CN")
    timezone = models.CharField(
        max_length=64, blank=True, default="", help_text='IANA zone, e.g. "Asia/Shanghai"; empty: the skill default',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "webapp"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "staff_id"],
                condition=~Q(staff_id=""),
                name="uniq_profile_staff_id",
            ),
            models.UniqueConstraint(
                fields=["tenant_id", "sender_id"],
                condition=Q(staff_id=""),
                name="uniq_profile_sender_id_without_staff_id",
            ),
        ]

    @property
    def user_id(self) -> str:
        """The id skills see: the staff id when known, else the encrypted sender id."""
        return self.staff_id or self.sender_id

    def snapshot(self) -> dict[str, object]:
        """JSON primitives for the Turn (skills never see the model)."""
        return {
            "staff_id": self.staff_id,
            "nick": self.nick,
            "department": self.department,
            "roles": list(self.roles or []),
            "locale": self.locale,
            "timezone": self.timezone,
        }

    def __str__(self) -> str:
        return f"{self.nick or self.user_id} ({self.tenant_id})"
