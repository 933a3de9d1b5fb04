"""Document collections (with the departments allowed to search them) and uploaded documents."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.validators import FileExtensionValidator
from django.db import models

DOCUMENT_SUFFIXES = ["txt", "md", "markdown", "pdf", "docx"]


def document_storage() -> FileSystemStorage:
    """Uploaded originals under var/documents (kept so a document can be re-ingested)."""
    return FileSystemStorage(location=settings.BASE_DIR / "var" / "documents")


def _validate_departments(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(d, (str, int)) and str(d).strip() for d in value):
        raise ValidationError(
            'departments must be a JSON list of department ids, e.g. ["1001", "1002"]; [] means everyone')


class DocumentCollection(models.Model):
    """A set of documents searched together; only the listed departments may search it (empty: all)."""

    name = models.CharField(max_length=100, unique=True)
    departments = models.JSONField(
        default=list, blank=True, validators=[_validate_departments],
        help_text='DingTalk department ids allowed to search this collection, e.g. ["1001"]; [] = everyone',
    )
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "webapp"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def department_ids(self) -> list[str]:
        return [str(d).strip() for d in self.departments or [] if str(d).strip()]


class Document(models.Model):
    """One uploaded file; ingestion fills sha256, n_chunks and status (or error)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        READY = "ready", "ready"
        DUPLICATE = "duplicate", "duplicate (same content already in the collection)"
        FAILED = "failed", "failed"

    collection = models.ForeignKey(DocumentCollection, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=200)
    file = models.FileField(
        upload_to="%Y/%m/", storage=document_storage,
        validators=[FileExtensionValidator(DOCUMENT_SUFFIXES)],
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    sha256 = models.CharField(max_length=64, blank=True, default="", db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    n_chunks = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ingested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "webapp"
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def doc_key(self) -> str:
        """The document's key in the vector store: stable across re-uploads of the same row."""
        return f"document:{self.pk}"
