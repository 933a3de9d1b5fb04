"""Fixtures for router tests: a cheap deterministic embedder for the plumbing, real models for the slow tests."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from skills.routing import embedders as emb


@dataclass
class HashingEmbedder:
    """Character n-grams (trigrams by default) hashed into `dim` dims: a real (if weak) embedding that loads instantly."""

    name: str = "hash"
    dim: int = 256
    revision: str = "test-1"
    calls: int = 0
    cheap: bool = False
    n: int = 3

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.vstack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        self.calls += 1
        return self._vec(text)

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        padded = f"  {text.lower()}  "
        for i in range(len(padded) - self.n + 1):
            v[zlib.crc32(padded[i : i + self.n].encode()) % self.dim] += 1.0
        return v / (np.linalg.norm(v) + 1e-12)


@pytest.fixture
def hashing_embedder(monkeypatch: pytest.MonkeyPatch) -> HashingEmbedder:
    instance = HashingEmbedder()
    monkeypatch.setitem(emb.EMBEDDERS, "hash", lambda: instance)
    return instance


@pytest.fixture
def cascade_embedders(monkeypatch: pytest.MonkeyPatch) -> tuple[HashingEmbedder, HashingEmbedder]:
    """"cheap" (bigrams, marked cheap) and "dear" (4-grams): a pair the router builds an early exit for."""
    cheap = HashingEmbedder(name="cheap", dim=128, cheap=True, n=2)
    dear = HashingEmbedder(name="dear", dim=192, n=4)
    monkeypatch.setitem(emb.EMBEDDERS, "cheap", lambda: cheap)
    monkeypatch.setitem(emb.EMBEDDERS, "dear", lambda: dear)
    return cheap, dear
