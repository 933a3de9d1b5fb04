"""Fixtures for router tests: a cheap deterministic embedder for the plumbing, real models for the slow tests."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pytest

from skills.routing import embedders as emb


@dataclass
class HashingEmbedder:
    """Character trigrams hashed into 256 dims: a real (if weak) embedding that loads instantly."""

    name: str = "hash"
    dim: int = 256
    revision: str = "test-1"
    calls: int = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        return np.vstack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_one(self, text: str) -> np.ndarray:
        self.calls += 1
        return self._vec(text)

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        padded = f"  {text.lower()}  "
        for i in range(len(padded) - 2):
            v[zlib.crc32(padded[i : i + 3].encode()) % self.dim] += 1.0
        return v / (np.linalg.norm(v) + 1e-12)


@pytest.fixture
def hashing_embedder(monkeypatch: pytest.MonkeyPatch) -> HashingEmbedder:
    instance = HashingEmbedder()
    monkeypatch.setitem(emb.EMBEDDERS, "hash", lambda: instance)
    return instance
