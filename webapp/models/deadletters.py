"""DeadLetter: a message that failed for good at one stage, kept with its payload for replay."""

from __future__ import annotations

from django.db import models


class DeadLetter(models.Model):
    """The dead-letter queue: replay re-runs the pipeline from `stage` with `payload`."""

    msg_id = models.CharField(max_length=191, db_index=True)
    stage = models.CharField(max_length=32)
    payload = models.JSONField()
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replay_count = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "webapp"
        ordering = ["-created_at"]
        permissions = [("replay_deadletter", "Can replay dead letters")]

    @property
    def pending(self) -> bool:
        return self.replayed_at is None

    def __str__(self) -> str:
        return f"{self.msg_id} @ {self.stage}"
