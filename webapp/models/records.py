"""MessageRecord: one row per msgId with its status and the timestamp of every stage."""

from __future__ import annotations

from django.db import models


class MessageStatus(models.TextChoices):
    RECEIVED = "received"
    PROCESSING = "processing"
    REPLIED = "replied"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    DEAD = "dead"
    DELIVERY_UNKNOWN = "delivery_unknown"


class DeliveryChannel(models.TextChoices):
    WEBHOOK = "webhook"
    OPENAPI = "openapi"
    CARD = "card"  # streamed into an AI card by run_skill


class MessageRecord(models.Model):
    """The durable trace of one DingTalk message; also the dedup backstop (unique msg_id)."""

    msg_id = models.CharField(max_length=191, unique=True)
    tenant_id = models.CharField(max_length=128, db_index=True)
    conversation_id = models.CharField(max_length=256, blank=True, default="")
    conversation_type = models.CharField(max_length=8, blank=True, default="")
    user = models.ForeignKey(
        "webapp.UserProfile", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="messages",
    )
    msgtype = models.CharField(max_length=32, blank=True, default="")
    skill = models.CharField(max_length=64, blank=True, default="")
    intent = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(
        max_length=24, choices=MessageStatus.choices, default=MessageStatus.RECEIVED,
        db_index=True,
    )
    # Id of the pipeline run that owns this message (its preprocess task id).
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    duplicate_count = models.PositiveIntegerField(default=0)
    channel = models.CharField(
        max_length=16, choices=DeliveryChannel.choices, blank=True, default=""
    )
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    preprocessed_at = models.DateTimeField(null=True, blank=True)
    skill_done_at = models.DateTimeField(null=True, blank=True)
    postprocessed_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    # The reply's progress as deliver last made it durable (contract.keys' states: "sending:<i>" is
    # written just before part i leaves, "sent" with the replied status): deliver's fallback when
    # Redis lost its reply state, so a reply is never sent twice.
    reply_progress = models.CharField(max_length=32, blank=True, default="")
    # What each stage carried in its payload and deliver (or the dead letter) wrote in its one update:
    # {"stages": {name: {start, end, first, tries, worker}}, "llm": {...}, "parts": n} (webapp.timeline).
    timeline = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "webapp"
        indexes = [
            models.Index(fields=["tenant_id", "conversation_id", "-created_at"]),
            # The daily retention deletes by age (MESSAGE_RECORD_RETENTION_DAYS).
            models.Index(fields=["created_at"], name="webapp_msgrecord_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.msg_id} [{self.status}]"
