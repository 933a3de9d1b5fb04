"""Reminders of the schedule skill and their firings (one row per fired occurrence: fire once)."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone


class Reminder(models.Model):
    """A user's reminder; `fire_at` (= event_at - reminder_offset) is what the sweeper looks at."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        FIRED = "fired", "fired"
        CANCELLED = "cancelled", "cancelled"

    tenant_id = models.CharField(max_length=128)
    user_id = models.CharField(max_length=128, help_text="DingTalk staff id (the one-to-one send target)")
    conversation_id = models.CharField(max_length=256, blank=True, default="")
    conversation_type = models.CharField(max_length=4, blank=True, default="1")
    title = models.CharField(max_length=200)
    event_at = models.DateTimeField(help_text="the next occurrence of the event")
    fire_at = models.DateTimeField()
    reminder_offset = models.DurationField(default=timedelta(0))
    rrule = models.CharField(max_length=200, blank=True, default="", help_text="RFC 5545 RRULE body; empty: once")
    timezone = models.CharField(max_length=64, default="Asia/Shanghai")
    lang = models.CharField(max_length=8, default="zh")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    occurrence = models.PositiveIntegerField(default=0, help_text="occurrences fired so far")
    source_key = models.CharField(max_length=200, unique=True, help_text="idempotency key of the confirm button")
    fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "webapp"
        ordering = ["fire_at"]
        indexes = [
            models.Index(fields=["status", "fire_at"], name="reminder_due"),
            models.Index(fields=["tenant_id", "user_id", "status"], name="reminder_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.title} @ {self.event_at:%Y-%m-%d %H:%M}"


class ReminderFiring(models.Model):
    """One fired occurrence. The unique (reminder, occurrence_at) makes a second claim impossible."""

    reminder = models.ForeignKey(Reminder, on_delete=models.CASCADE, related_name="firings")
    occurrence_at = models.DateTimeField()
    fired_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")

    class Meta:
        app_label = "webapp"
        ordering = ["-fired_at"]
        constraints = [
            models.UniqueConstraint(fields=["reminder", "occurrence_at"], name="reminder_fires_once_per_occurrence"),
        ]
        indexes = [models.Index(fields=["delivered_at", "fired_at"], name="reminder_firing_undelivered")]

    def __str__(self) -> str:
        return f"{self.reminder_id} @ {self.occurrence_at:%Y-%m-%d %H:%M}"
