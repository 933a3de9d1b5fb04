"""Admin for document collections and uploads; saving a document ingests it (synchronously)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webapp.actions.documents import (
    do_delete_collection,
    do_ingest_document,
    do_remove_document,
    do_sync_collection,
)
from webapp.models.documents import Document, DocumentCollection


@admin.register(DocumentCollection)
class DocumentCollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "departments", "updated_at")
    search_fields = ("name",)

    def save_model(self, request: HttpRequest, obj: DocumentCollection, form: Any, change: bool) -> None:
        previous = DocumentCollection.objects.filter(pk=obj.pk).values_list("name", flat=True).first() if change else ""
        super().save_model(request, obj, form, change)
        do_sync_collection(obj, previous_name=previous or "")

    def delete_model(self, request: HttpRequest, obj: DocumentCollection) -> None:
        do_delete_collection(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DocumentCollection]) -> None:
        for collection in queryset:
            do_delete_collection(collection)
        super().delete_queryset(request, queryset)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "collection", "status", "n_chunks", "uploaded_by", "ingested_at")
    list_filter = ("status", "collection")
    search_fields = ("title", "sha256")
    readonly_fields = ("sha256", "status", "n_chunks", "error", "uploaded_by", "created_at", "ingested_at")
    fields = ("collection", "title", "file") + readonly_fields
    actions = ("reingest",)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        if change and "collection" in form.changed_data:
            old = Document.objects.select_related("collection").get(pk=obj.pk)
            do_remove_document(old)
        if not change:
            obj.uploaded_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)
        if not change or {"file", "title", "collection"} & set(form.changed_data):
            self._ingest(request, obj)

    def _ingest(self, request: HttpRequest, obj: Document) -> None:
        do_ingest_document(obj)
        level = messages.ERROR if obj.status == Document.Status.FAILED else (
            messages.WARNING if obj.status == Document.Status.DUPLICATE else messages.SUCCESS)
        self.message_user(request, f"{obj.title}: {obj.get_status_display()}, {obj.n_chunks} chunks. {obj.error}", level)

    @admin.action(description="Re-ingest the selected documents")
    def reingest(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset.select_related("collection"):
            self._ingest(request, document)

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        do_remove_document(obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset.select_related("collection"):
            do_remove_document(document)
        super().delete_queryset(request, queryset)
