"""Chunks, vectors and department rules in PostgreSQL + pgvector; hybrid search with the ACL in SQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import psycopg2
import psycopg2.extras

from skills.docsearch.chunking import Chunk
from skills.docsearch.lexical import document_terms, query_terms


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with what a citation needs."""

    chunk_id: int
    collection: str
    title: str
    filename: str
    section: str
    content: str
    score: float  # reciprocal-rank fusion of the vector and keyword rankings
    similarity: float | None  # cosine similarity, when the vector side found it
    keyword_rank: int | None  # rank on the keyword side, when it found it


@dataclass(frozen=True)
class StoredDocument:
    collection: str
    doc_key: str
    title: str
    sha256: str
    n_chunks: int


class UnknownCollection(LookupError):
    """Documents go into collections that exist (created with their department rule first)."""


class SearchStore(Protocol):
    """What the skill needs from the vector store: a department-filtered hybrid search."""

    def search(
        self, query_vector: np.ndarray, query_text: str, departments: Sequence[str], k: int = 5
    ) -> list[Hit]: ...


class DocumentStore(SearchStore, Protocol):
    """What ingestion needs from the vector store (and the skill's search)."""

    def ensure_schema(self) -> None: ...

    def set_collection(self, name: str, departments: Sequence[str]) -> None: ...

    def delete_collection(self, name: str) -> bool: ...

    def find_by_hash(self, collection: str, sha256: str) -> StoredDocument | None: ...

    def replace_document(
        self, collection: str, doc_key: str, title: str, filename: str, sha256: str,
        chunks: Sequence[Chunk], embeddings: np.ndarray,
    ) -> int: ...

    def delete_document(self, collection: str, doc_key: str) -> bool: ...


def _vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; avoids registering the type per connection before the extension exists."""
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32).ravel()) + "]"


_SCHEMA_LOCK_KEY = 0x646F6373  # "docs": serialises concurrent ensure_schema() calls

_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS docsearch_collection (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    departments text[] NOT NULL DEFAULT '{{}}',  -- empty: everyone may search it
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS docsearch_document (
    id bigserial PRIMARY KEY,
    collection_id bigint NOT NULL REFERENCES docsearch_collection(id) ON DELETE CASCADE,
    doc_key text NOT NULL,
    title text NOT NULL,
    filename text NOT NULL,
    sha256 char(64) NOT NULL,
    n_chunks integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, doc_key)
);
CREATE INDEX IF NOT EXISTS docsearch_document_sha ON docsearch_document (collection_id, sha256);
CREATE TABLE IF NOT EXISTS docsearch_chunk (
    id bigserial PRIMARY KEY,
    document_id bigint NOT NULL REFERENCES docsearch_document(id) ON DELETE CASCADE,
    collection_id bigint NOT NULL REFERENCES docsearch_collection(id) ON DELETE CASCADE,
    ordinal integer NOT NULL,
    section text NOT NULL DEFAULT '',
    content text NOT NULL,
    lexemes tsvector NOT NULL,
    embedding vector({dim}) NOT NULL
);
CREATE INDEX IF NOT EXISTS docsearch_chunk_embedding_hnsw
    ON docsearch_chunk USING hnsw (embedding vector_cosine_ops);
CREATE INDEX IF NOT EXISTS docsearch_chunk_lexemes ON docsearch_chunk USING gin (lexemes);
CREATE INDEX IF NOT EXISTS docsearch_chunk_collection ON docsearch_chunk (collection_id);
"""

# The department rule appears once, in `visible`; both rankings only read chunks of visible
# collections, and the final join re-checks it, so no ranking path can leak a restricted chunk.
_SEARCH = """
WITH visible AS (
    SELECT id, name FROM docsearch_collection
    WHERE cardinality(departments) = 0 OR departments && %(departments)s::text[]
),
vec AS (
    SELECT id, dist, row_number() OVER (ORDER BY dist) AS rnk FROM (
        SELECT c.id, c.embedding <=> %(qvec)s::vector AS dist
        FROM docsearch_chunk c
        WHERE c.collection_id IN (SELECT id FROM visible)
        ORDER BY c.embedding <=> %(qvec)s::vector
        LIMIT %(candidates)s
    ) nearest
),
query AS (
    SELECT (CASE WHEN %(en)s <> '' THEN to_tsquery('english', %(en)s) ELSE ''::tsquery END)
        || (CASE WHEN %(cjk)s <> '' THEN to_tsquery('simple', %(cjk)s) ELSE ''::tsquery END) AS q
),
lex AS (
    SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS rnk FROM (
        SELECT c.id, ts_rank_cd(c.lexemes, query.q, 1) AS rank
        FROM docsearch_chunk c, query
        WHERE c.collection_id IN (SELECT id FROM visible) AND c.lexemes @@ query.q
        ORDER BY rank DESC
        LIMIT %(candidates)s
    ) matched
)
SELECT ch.id, v.name, d.title, d.filename, ch.section, ch.content,
       COALESCE(1.0 / (%(rrf_k)s + vec.rnk), 0) + COALESCE(1.0 / (%(rrf_k)s + lex.rnk), 0) AS score,
       1 - vec.dist AS similarity, lex.rnk
FROM (SELECT id FROM vec UNION SELECT id FROM lex) found
JOIN docsearch_chunk ch ON ch.id = found.id
JOIN visible v ON v.id = ch.collection_id
JOIN docsearch_document d ON d.id = ch.document_id
LEFT JOIN vec ON vec.id = ch.id
LEFT JOIN lex ON lex.id = ch.id
ORDER BY score DESC, ch.id
LIMIT %(k)s
"""


class PgVectorStore:
    """DocumentStore on PostgreSQL with pgvector; one connection per process (fork-safe)."""

    def __init__(self, url: str, dim: int = 384, candidates: int = 40, rrf_k: int = 60) -> None:
        self.url = url
        self.dim = dim
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._conn: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed or self._pid != os.getpid():
            self._conn = psycopg2.connect(self.url, connect_timeout=10)
            self._pid = os.getpid()
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One transaction on the process connection; a broken connection is dropped, not reused."""
        with self._lock:
            conn = self._connection()
            try:
                with conn:  # commit on success, rollback on error
                    with conn.cursor() as cur:
                        yield cur
            except psycopg2.OperationalError:
                conn.close()
                self._conn = None
                raise

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def ensure_schema(self) -> None:
        """Create the extension, tables and indexes if missing; safe to call from many processes."""
        with self._transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            cur.execute(_SCHEMA.format(dim=int(self.dim)))

    def set_collection(self, name: str, departments: Sequence[str]) -> None:
        """Create or update a collection and the departments allowed to search it (empty: everyone)."""
        depts = sorted({str(d).strip() for d in departments if str(d).strip()})
        with self._transaction() as cur:
            cur.execute(
                """INSERT INTO docsearch_collection (name, departments) VALUES (%s, %s)
                   ON CONFLICT (name) DO UPDATE SET departments = EXCLUDED.departments, updated_at = now()""",
                (name, depts),
            )

    def rename_collection(self, old: str, new: str) -> bool:
        with self._transaction() as cur:
            cur.execute("UPDATE docsearch_collection SET name = %s, updated_at = now() WHERE name = %s", (new, old))
            return bool(cur.rowcount)

    def delete_collection(self, name: str) -> bool:
        with self._transaction() as cur:
            cur.execute("DELETE FROM docsearch_collection WHERE name = %s", (name,))
            return bool(cur.rowcount)

    def find_by_hash(self, collection: str, sha256: str) -> StoredDocument | None:
        with self._transaction() as cur:
            cur.execute(
                """SELECT col.name, d.doc_key, d.title, d.sha256, d.n_chunks
                   FROM docsearch_document d JOIN docsearch_collection col ON col.id = d.collection_id
                   WHERE col.name = %s AND d.sha256 = %s ORDER BY d.id LIMIT 1""",
                (collection, sha256),
            )
            row = cur.fetchone()
        return StoredDocument(*row) if row else None

    def replace_document(
        self, collection: str, doc_key: str, title: str, filename: str, sha256: str,
        chunks: Sequence[Chunk], embeddings: np.ndarray,
    ) -> int:
        """Put the document's chunks in place of its previous version, atomically."""
        if len(chunks) != len(embeddings):
            raise ValueError("one embedding per chunk")
        with self._transaction() as cur:
            cur.execute("SELECT id FROM docsearch_collection WHERE name = %s", (collection,))
            row = cur.fetchone()
            if row is None:
                raise UnknownCollection(f"no collection named {collection!r}")
            collection_id = row[0]
            cur.execute(
                """INSERT INTO docsearch_document (collection_id, doc_key, title, filename, sha256, n_chunks)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (collection_id, doc_key) DO UPDATE SET title = EXCLUDED.title,
                     filename = EXCLUDED.filename, sha256 = EXCLUDED.sha256,
                     n_chunks = EXCLUDED.n_chunks, updated_at = now()
                   RETURNING id""",
                (collection_id, doc_key, title, filename, sha256, len(chunks)),
            )
            document_id = cur.fetchone()[0]
            cur.execute("DELETE FROM docsearch_chunk WHERE document_id = %s", (document_id,))
            rows = []
            for chunk, vector in zip(chunks, embeddings, strict=True):
                terms = document_terms(f"{title}\n{chunk.section}\n{chunk.text}")
                rows.append((document_id, collection_id, chunk.ordinal, chunk.section, chunk.text,
                             terms.english, terms.cjk, _vector_literal(vector)))
            psycopg2.extras.execute_values(
                cur,
                """INSERT INTO docsearch_chunk
                   (document_id, collection_id, ordinal, section, content, lexemes, embedding) VALUES %s""",
                rows,
                template="(%s, %s, %s, %s, %s, to_tsvector('english', %s) || to_tsvector('simple', %s), %s::vector)",
            )
        return len(chunks)

    def delete_document(self, collection: str, doc_key: str) -> bool:
        with self._transaction() as cur:
            cur.execute(
                """DELETE FROM docsearch_document d USING docsearch_collection col
                   WHERE col.id = d.collection_id AND col.name = %s AND d.doc_key = %s""",
                (collection, doc_key),
            )
            return bool(cur.rowcount)

    def search(self, query_vector: np.ndarray, query_text: str, departments: Sequence[str], k: int = 5) -> list[Hit]:
        """Top-k chunks by reciprocal-rank fusion of cosine distance and keyword rank, ACL applied."""
        terms = query_terms(query_text)
        params = {
            "departments": sorted({str(d) for d in departments}),
            "qvec": _vector_literal(query_vector),
            "candidates": self.candidates,
            "en": terms.english,
            "cjk": terms.cjk,
            "rrf_k": self.rrf_k,
            "k": k,
        }
        with self._transaction() as cur:
            # A filtered HNSW scan may stop before it finds enough visible rows; let it continue.
            cur.execute("SET LOCAL hnsw.ef_search = 100")
            cur.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            cur.execute(_SEARCH, params)
            rows = cur.fetchall()
        return [
            Hit(chunk_id=r[0], collection=r[1], title=r[2], filename=r[3], section=r[4], content=r[5],
                score=float(r[6]), similarity=None if r[7] is None else float(r[7]),
                keyword_rank=None if r[8] is None else int(r[8]))
            for r in rows
        ]
