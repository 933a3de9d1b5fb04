"""Intent routing data: training examples, versioned router artefacts, and the log of routed turns."""

from __future__ import annotations

from django.db import models


class IntentExample(models.Model):
    """One training utterance of an intent; seeded from the skills, edited and relabelled in admin."""

    class Source(models.TextChoices):
        SEED = "seed", "shipped with a skill"
        ADMIN = "admin", "added in admin"
        RELABEL = "relabel", "relabelled routed turn"
        IMPORT = "import", "imported file"

    intent = models.CharField(max_length=128, db_index=True)
    text = models.TextField()
    language = models.CharField(max_length=8, default="zh", help_text="zh or en")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=256, blank=True, default="", editable=False)
    # Set for relabelled user messages: whose text it is (export/erase find it by these).
    origin_tenant_id = models.CharField(max_length=128, blank=True, default="", editable=False)
    origin_user_id = models.CharField(max_length=256, blank=True, default="", editable=False, db_index=True)
    # Per-user export/erase (webapp.actions.privacy) finds the relabelled messages of a person here.
    PERSONAL_DATA_FIELDS = {"tenant": "origin_tenant_id", "user": "origin_user_id"}

    class Meta:
        app_label = "webapp"
        constraints = [models.UniqueConstraint(fields=["intent", "text"], name="uniq_intent_example")]
        ordering = ["intent", "id"]

    def snapshot(self) -> dict[str, object]:
        return {"intent": self.intent, "text": self.text, "language": self.language,
                "source": self.source, "enabled": self.enabled}

    def __str__(self) -> str:
        return f"{self.intent}: {self.text[:40]}"


class RouterModel(models.Model):
    """A trained router: the artefact bytes (npz, no pickle) so workers on any host can load it."""

    version = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True, db_index=True,
                                        help_text="The most recently activated model is the one workers use")
    created_by = models.CharField(max_length=256, blank=True, default="")
    n_examples = models.PositiveIntegerField(default=0)
    intents = models.JSONField(default=list)
    embedders = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, blank=True)
    train_seconds = models.FloatField(default=0.0)
    artefact = models.BinaryField(editable=False)
    size_bytes = models.PositiveIntegerField(default=0)

    class Meta:
        app_label = "webapp"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.version


class RoutedTurn(models.Model):
    """How one message was routed. Holds user text: purged after ROUTED_TURN_RETENTION_DAYS and
    included in a user's export/erase (keyed by tenant_id + user_id)."""

    class Decision(models.TextChoices):
        ROUTED = "routed", "confident: sent to the skill"
        CLARIFY = "clarify", "unsure: asked which skill"
        FALLBACK = "fallback", "out of scope: fallback skill"
        CHOSEN = "chosen", "the user picked the skill"
        CALLBACK = "callback", "a button of a skill"
        KEYWORD = "keyword", "keyword router (no model yet)"

    msg_id = models.CharField(max_length=256, unique=True)
    tenant_id = models.CharField(max_length=128, db_index=True)
    user_id = models.CharField(max_length=256, db_index=True)
    text = models.TextField()
    PERSONAL_DATA_FIELDS = {"tenant": "tenant_id", "user": "user_id"}  # for per-user export/erase
    predicted_intent = models.CharField(max_length=128, blank=True, default="", db_index=True)
    confidence = models.FloatField(default=0.0)
    top = models.JSONField(default=list, blank=True)
    skill = models.CharField(max_length=128, blank=True, default="")
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.ROUTED)
    router_version = models.CharField(max_length=64, blank=True, default="")
    # Which head of the cascade answered: 1 the cheap early exit, 2 the full model, 0 no model.
    router_stage = models.PositiveSmallIntegerField(default=0)
    corrected_intent = models.CharField(max_length=128, blank=True, default="")
    corrected_by = models.CharField(max_length=256, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        app_label = "webapp"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.msg_id} → {self.predicted_intent or '-'}"
