"""Embedding cache keyed by embedder and text hash, so retraining only embeds new examples."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .embedders import Embedder

# Embeddings are deterministic per (model, text); bump when an adapter changes its output.
CACHE_SCHEMA = 1
# Texts embedded (and stored) per call: progress can be shown, and an interrupted run keeps its work.
EMBED_BATCH = 256

# Told how the embedding goes: (texts just embedded, texts newly found missing) — a command's progress bar.
Progress = Callable[[int, int], None]


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class EmbeddingCache:
    """A SQLite file of float32 vectors; safe to share between processes (SQLite locks)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.embedded = 0  # texts this handle had to embed (cache misses), for reporting
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT, key BLOB, vec BLOB, PRIMARY KEY (model, key))"
        )

    def close(self) -> None:
        self._db.close()

    def get_many(self, model: str, keys: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i : i + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vec FROM emb WHERE model = ? AND key IN ({marks})", [model, *chunk]
                ).fetchall()
                for key, vec in rows:
                    v = np.frombuffer(vec, dtype=np.float32)
                    if v.shape == (dim,):
                        found[bytes(key)] = v
        return found

    def put_many(self, model: str, items: dict[bytes, np.ndarray]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO emb (model, key, vec) VALUES (?, ?, ?)",
                [(model, k, np.asarray(v, np.float32).tobytes()) for k, v in items.items()],
            )


def encode_cached(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache | None,
                  progress: Progress | None = None) -> np.ndarray:
    """embedder.encode(texts), reading what the cache has and embedding (then storing) the rest."""
    if cache is None:
        return embedder.encode(texts)
    parts = getattr(embedder, "parts", [embedder])
    return np.hstack([_assemble(p, texts, cache, progress) for p in parts]).astype(np.float32)


def fill(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache, progress: Progress | None = None) -> int:
    """Embed and store what the cache lacks of `texts` (when examples are written, so a later training
    only fits the classifier); returns how many texts were embedded."""
    before = cache.embedded
    for part in getattr(embedder, "parts", [embedder]):
        _lookup(part, texts, cache, progress)
    return cache.embedded - before


def _lookup(
    embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache, progress: Progress | None = None
) -> tuple[list[bytes], dict[bytes, np.ndarray]]:
    """(key per text, vector per key), embedding and storing the texts the cache lacks, a batch at a time."""
    model = f"{embedder.name}/{embedder.revision}/v{CACHE_SCHEMA}"
    keys = [text_key(t) for t in texts]
    found = cache.get_many(model, list(dict.fromkeys(keys)), embedder.dim)
    missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
    if missing and progress is not None:
        progress(0, len(missing))
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start:start + EMBED_BATCH]
        new = {text_key(t): v for t, v in zip(batch, embedder.encode(batch), strict=True)}
        cache.put_many(model, new)
        cache.embedded += len(batch)
        found.update(new)
        if progress is not None:
            progress(len(batch), 0)
    return keys, found


def _assemble(embedder: Embedder, texts: Sequence[str], cache: EmbeddingCache,
              progress: Progress | None = None) -> np.ndarray:
    keys, found = _lookup(embedder, texts, cache, progress)
    out = np.empty((len(texts), embedder.dim), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = found[k]
    return out
