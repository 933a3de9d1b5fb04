"""do_* actions for documents: collection and document rows, kept in step with the vector store."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from conf.settings import get_settings
from skills.docsearch.embedded_pg import resolve_database_url
from skills.docsearch.extract import ExtractionError
from skills.docsearch.ingest import ingest
from skills.docsearch.store import PgVectorStore, UnknownCollection
from webapp.actions.audit import record_audit
from webapp.models.audit import AuditAction
from webapp.models.documents import Document, DocumentCollection

log = logging.getLogger(__name__)

# What changes a document's chunks: anything else (none today) is saved without re-ingesting.
CONTENT_FIELDS = frozenset({"file", "title", "collection"})


@lru_cache(maxsize=2)
def _open_store(configured_url: str, data_dir: str) -> PgVectorStore:
    store = PgVectorStore(resolve_database_url(configured_url, data_dir))
    store.ensure_schema()
    return store


def vector_store() -> PgVectorStore:
    """The process's vector store (VECTOR_DATABASE_URL, else the embedded pgvector), schema ensured
    once per process and configuration."""
    s = get_settings()
    return _open_store(s.vector_database_url, str(s.pgvector_data_dir))


def _collection_row(collection: DocumentCollection) -> dict[str, Any]:
    return {"name": collection.name, "departments": collection.department_ids}


def do_save_collection(collection: DocumentCollection, actor: str) -> DocumentCollection:
    """Create or update the collection row, audited, then its name and department rule in the vector
    store (a rename moves its chunks)."""
    previous = (DocumentCollection.objects.filter(pk=collection.pk).first() if collection.pk else None)
    with transaction.atomic():
        collection.save()
        record_audit(actor=actor, action=AuditAction.DOCUMENT_COLLECTION_SAVE, target_type="document_collection",
                     target_id=str(collection.pk), before=previous and _collection_row(previous),
                     after=_collection_row(collection))
    do_sync_collection(collection, previous_name=previous.name if previous else "")
    return collection


def do_sync_collection(collection: DocumentCollection, previous_name: str = "") -> None:
    """Create/update the collection and its department rule in the vector store (rename included)."""
    store = vector_store()
    if previous_name and previous_name != collection.name:
        store.rename_collection(previous_name, collection.name)
    store.set_collection(collection.name, collection.department_ids)


def do_delete_collection(collection: DocumentCollection, actor: str) -> None:
    """Take the collection out of the vector store, then delete its row and documents, audited."""
    vector_store().delete_collection(collection.name)
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.DOCUMENT_COLLECTION_DELETE, target_type="document_collection",
                     target_id=str(collection.pk), before=_collection_row(collection))
        collection.delete()


def _document_row(document: Document) -> dict[str, Any]:
    return {"title": document.title, "collection": document.collection.name, "file": document.file.name}


def _upload_detail(document: Document) -> dict[str, Any]:
    """Size and SHA-256 of an uploaded file (never its content), and the collection's access rule."""
    digest, size = hashlib.sha256(), 0
    try:
        with document.file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
                size += len(block)
    except (OSError, ValueError):
        return {"departments": document.collection.department_ids}
    return {"size": size, "sha256": digest.hexdigest(), "departments": document.collection.department_ids}


def do_save_document(document: Document, actor: str, *, changed: Iterable[str] = (),
                     uploaded_by: Any = None) -> Document:
    """Save an uploaded (no pk yet) or edited document, audited, and ingest it when it is new or
    its file, title or collection changed (a move first takes its chunks out of the old collection)."""
    created = document.pk is None
    changed = set(changed)
    previous = None if created else Document.objects.select_related("collection").get(pk=document.pk)
    if previous is not None and "collection" in changed:
        do_remove_document(previous)
    if created:
        document.uploaded_by = uploaded_by
    with transaction.atomic():
        document.save()
        # An upload is its own event (what came in, how big, its digest); an edit shows before/after.
        record_audit(actor=actor, action=AuditAction.DOCUMENT_UPLOAD if created else AuditAction.DOCUMENT_SAVE,
                     target_type="document", target_id=str(document.pk),
                     before=previous and _document_row(previous), after=_document_row(document),
                     detail=_upload_detail(document) if created else {})
    if created or CONTENT_FIELDS & changed:
        do_ingest_document(document)
    return document


def do_upload_document(collection: DocumentCollection, title: str, filename: str, content: File,
                       actor: str) -> Document:
    """Store `content` as the document `title` of the collection (replacing the stored original of
    an earlier upload under that title) and ingest it."""
    document = Document.objects.filter(collection=collection, title=title).first()
    document = document or Document(collection=collection, title=title)
    if document.file:
        document.file.delete(save=False)  # the new upload replaces the stored original
    document.file.save(filename, content, save=False)
    return do_save_document(document, actor, changed={"file"})


def do_ingest_document(document: Document) -> Document:
    """Extract, chunk, embed and store the document's file; record the outcome on the row.

    Runs in the caller's process: the admin calls it synchronously (fine for handbook-sized files;
    a 50-page PDF takes tens of seconds on 2 cores), a Celery task can call it for large ones.
    """
    store = vector_store()
    do_sync_collection(document.collection)
    try:
        with document.file.open("rb") as fh:
            data = fh.read()
        outcome = ingest(store, document.collection.name, document.title, document.file.name, data,
                         doc_key=document.doc_key)
    except (ExtractionError, UnknownCollection, OSError) as exc:
        document.status, document.error, document.n_chunks = Document.Status.FAILED, str(exc), 0
    else:
        document.sha256, document.n_chunks = outcome.sha256, outcome.n_chunks
        if outcome.status == "duplicate" and outcome.duplicate_of != document.doc_key:
            document.status = Document.Status.DUPLICATE
            document.error = f"same content as {outcome.duplicate_of} in this collection; not stored twice"
        else:
            document.status, document.error = Document.Status.READY, ""
        document.ingested_at = timezone.now()
    document.save(update_fields=["sha256", "n_chunks", "status", "error", "ingested_at", "updated_at"])
    log.info("document %s (%s): %s, %d chunks", document.pk, document.title, document.status, document.n_chunks)
    return document


def do_remove_document(document: Document, collection_name: str | None = None) -> None:
    """Take the document's chunks out of the vector store (before deleting or moving the row)."""
    vector_store().delete_document(collection_name or document.collection.name, document.doc_key)


def do_delete_document(document: Document, actor: str) -> None:
    """Take the document's chunks out of the vector store, then delete its row, audited."""
    do_remove_document(document)
    with transaction.atomic():
        record_audit(actor=actor, action=AuditAction.DOCUMENT_DELETE, target_type="document",
                     target_id=str(document.pk), before=_document_row(document))
        document.delete()
