"""do_* actions for documents: keep the vector store in step with DocumentCollection and Document rows."""

from __future__ import annotations

import logging
import threading

from django.utils import timezone

from conf.settings import get_settings
from skills.docsearch.embedded_pg import resolve_database_url
from skills.docsearch.extract import ExtractionError
from skills.docsearch.ingest import ingest
from skills.docsearch.store import PgVectorStore, UnknownCollection
from webapp.models.documents import Document, DocumentCollection

log = logging.getLogger(__name__)
_store: PgVectorStore | None = None
_store_lock = threading.Lock()


def vector_store() -> PgVectorStore:
    """The process's vector store (VECTOR_DATABASE_URL, else the embedded pgvector), schema ensured."""
    global _store
    with _store_lock:
        if _store is None:
            s = get_settings()
            store = PgVectorStore(resolve_database_url(s.vector_database_url, s.pgvector_data_dir))
            store.ensure_schema()
            _store = store
        return _store


def do_sync_collection(collection: DocumentCollection, previous_name: str = "") -> None:
    """Create/update the collection and its department rule in the vector store (rename included)."""
    store = vector_store()
    if previous_name and previous_name != collection.name:
        store.rename_collection(previous_name, collection.name)
    store.set_collection(collection.name, collection.department_ids)


def do_delete_collection(collection: DocumentCollection) -> None:
    vector_store().delete_collection(collection.name)


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
