"""Admin for document collections and uploads; saving a document ingests it (synchronously)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webapp.actions.documents import (
    CONTENT_FIELDS,
    do_delete_collection,
    do_delete_document,
    do_ingest_document,
    do_save_collection,
    do_save_document,
)
from webapp.admin.base import actor
from webapp.models.documents import Document, DocumentCollection


@admin.register(DocumentCollection)
class DocumentCollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "departments", "updated_at")
    search_fields = ("name",)

    def save_model(self, request: HttpRequest, obj: DocumentCollection, form: Any, change: bool) -> None:
        do_save_collection(obj, actor(request))

    def delete_model(self, request: HttpRequest, obj: DocumentCollection) -> None:
        do_delete_collection(obj, actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DocumentCollection]) -> None:
        for collection in queryset:
            do_delete_collection(collection, actor(request))


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "collection", "status", "n_chunks", "uploaded_by", "ingested_at")
    list_filter = ("status", "collection")
    search_fields = ("title", "sha256")
    readonly_fields = ("sha256", "status", "n_chunks", "error", "uploaded_by", "created_at", "ingested_at")
    fields = ("collection", "title", "file") + readonly_fields
    actions = ("reingest",)

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        do_save_document(obj, actor(request), changed=form.changed_data, uploaded_by=request.user)
        if not change or CONTENT_FIELDS & set(form.changed_data):
            self._report(request, obj)  # how the ingestion went

    def _report(self, request: HttpRequest, obj: Document) -> None:
        level = messages.ERROR if obj.status == Document.Status.FAILED else (
            messages.WARNING if obj.status == Document.Status.DUPLICATE else messages.SUCCESS)
        text = f"{obj.title}: {obj.get_status_display()}, {obj.n_chunks} chunks. {obj.error}"
        self.message_user(request, text, level)

    @admin.action(description="Re-ingest the selected documents")
    def reingest(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset.select_related("collection"):
            do_ingest_document(document)
            self._report(request, document)

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        do_delete_document(obj, actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        for document in queryset.select_related("collection"):
            do_delete_document(document, actor(request))
