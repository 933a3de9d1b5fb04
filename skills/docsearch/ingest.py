"""Ingestion: bytes of a file → sections → chunks → embeddings → the store (deduplicated by content)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TypedDict, Unpack

from skills.docsearch.chunking import chunk_sections
from skills.docsearch.embedding import Embedder, shared_embedder
from skills.docsearch.extract import extract_sections
from skills.docsearch.store import DocumentStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one upload: `stored` (new or replaced) or `duplicate` (same bytes already there)."""

    status: str
    n_chunks: int
    sha256: str
    duplicate_of: str = ""


class IngestOptions(TypedDict, total=False):
    """The keyword options of `ingest`, for callers that pass them through."""

    doc_key: str | None
    embedder: Embedder | None
    max_units: int
    overlap_units: int


def passage_text(title: str, section: str, text: str) -> str:
    """What gets embedded: the title and heading path give a chunk its context ("which policy?")."""
    head = f"{title} — {section}" if section else title
    return f"{head}\n{text}"


def ingest(
    store: DocumentStore,
    collection: str,
    title: str,
    filename: str,
    data: bytes,
    *,
    doc_key: str | None = None,
    embedder: Embedder | None = None,
    max_units: int = 200,
    overlap_units: int = 40,
) -> IngestOutcome:
    """Store one document. `doc_key` (default: filename) identifies it: a re-upload replaces it.

    Raises ExtractionError for unreadable files and UnknownCollection when the collection does not
    exist (collections are created with their department rule first, never implicitly public).
    """
    key = doc_key or filename
    sha256 = hashlib.sha256(data).hexdigest()
    existing = store.find_by_hash(collection, sha256)
    if existing is not None:
        log.info("document %s unchanged (same content as %s)", key, existing.doc_key)
        return IngestOutcome("duplicate", existing.n_chunks, sha256, duplicate_of=existing.doc_key)
    chunks = chunk_sections(extract_sections(filename, data), max_units, overlap_units)
    model = embedder or shared_embedder()
    vectors = model.embed_passages([passage_text(title, c.section, c.text) for c in chunks])
    n = store.replace_document(collection, key, title, filename, sha256, chunks, vectors)
    log.info("document %s stored in %s: %d chunks", key, collection, n)
    return IngestOutcome("stored", n, sha256)


def ingest_document(
    store: DocumentStore, collection: str, title: str, filename: str, data: bytes, **options: Unpack[IngestOptions]
) -> int:
    """The number of chunks the document has in the store after ingesting it."""
    return ingest(store, collection, title, filename, data, **options).n_chunks
