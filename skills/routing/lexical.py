"""Character and word n-gram TF-IDF with a multinomial naive Bayes head: the router's lexical signal.

Sentence embeddings blur names and keywords ("打开熊猫看书", "top up via Apple Pay"); n-grams keep
them. Naive Bayes fits in one sparse product, so it adds almost nothing to training time.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Chosen on SMP2017/Banking77 validation: 2-5 beat 1-3 and 1-4 (char unigrams add only noise).
CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_SEP = "\x00"


def normalise(text: str) -> str:
    # NUL separates n-grams in the stored vocabulary, so it never appears inside one.
    return _SPACE.sub(" ", text.replace(_SEP, " ").strip().lower())


def ngrams(text: str) -> list[str]:
    """Character n-grams inside space-padded words (like sklearn's char_wb) plus word n-grams."""
    text = normalise(text)
    out: list[str] = []
    lo, hi = CHAR_NGRAMS
    for word in text.split(" "):
        padded = f" {word} "
        for n in range(lo, hi + 1):
            out += [padded[i : i + n] for i in range(len(padded) - n + 1)]
    words = _WORD.findall(text)
    lo, hi = WORD_NGRAMS
    for n in range(lo, hi + 1):
        out += ["w:" + " ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return out


@dataclass
class Featurizer:
    """N-gram vocabulary and IDF; unsupervised, so it may be fitted on every training text at once."""

    vocab: dict[str, int]
    idf: np.ndarray

    @classmethod
    def fit(cls, texts: Sequence[str], min_df: int = 2) -> tuple[Featurizer, Any]:
        """The featurizer and the TF-IDF matrix of `texts` (n-grams are extracted once)."""
        grams = [ngrams(t) for t in texts]
        ids: dict[str, int] = {}
        counts = _count_matrix(grams, [ids.setdefault(g, len(ids)) for gs in grams for g in gs], len(ids))
        df = np.bincount(counts.indices, minlength=len(ids))  # one entry per (text, n-gram) after summing
        # An n-gram seen once cannot generalise; dropping it keeps the artefact small.
        kept = sorted(g for g, i in ids.items() if df[i] >= min_df)
        old = np.fromiter((ids[g] for g in kept), dtype=np.int64, count=len(kept))
        idf = (np.log((1.0 + len(texts)) / (1.0 + df[old].astype(np.float64))) + 1.0).astype(np.float32)
        featurizer = cls(vocab={g: i for i, g in enumerate(kept)}, idf=idf)
        remap = np.full(len(ids), -1, dtype=np.int64)
        remap[old] = np.arange(len(kept))
        coo = counts.tocoo()
        keep = remap[coo.col] >= 0
        from scipy import sparse

        kept_counts = sparse.csr_matrix((coo.data[keep], (coo.row[keep], remap[coo.col[keep]])),
                                        shape=(len(texts), len(kept)))
        return featurizer, featurizer._weigh(kept_counts)

    def vector(self, grams: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Sparse (indices, values): sublinear TF x IDF, L2-normalised."""
        vocab = self.vocab
        tf = [(vocab[g], c) for g, c in Counter(grams).items() if g in vocab]
        idx = np.fromiter((j for j, _ in tf), dtype=np.int64, count=len(tf))
        val = (1.0 + np.log(np.fromiter((c for _, c in tf), dtype=np.float32, count=len(tf)))) * self.idf[idx]
        norm = float(np.sqrt(val @ val)) if len(val) else 1.0
        return idx, val / norm

    def matrix(self, texts: Sequence[str]) -> Any:
        return self._matrix([ngrams(t) for t in texts])

    def _matrix(self, grams: Sequence[Sequence[str]]) -> Any:  # scipy.sparse.csr_matrix
        vocab = self.vocab
        return self._weigh(_count_matrix(grams, [vocab.get(g, -1) for gs in grams for g in gs], len(vocab)))

    def _weigh(self, counts: Any) -> Any:
        """Counts → sublinear TF x IDF, each row L2-normalised (as `vector` does for one text)."""
        counts.data = (1.0 + np.log(counts.data)) * self.idf[counts.indices]
        sq = np.concatenate([[0.0], np.cumsum(counts.data.astype(np.float64) ** 2)])
        norms = np.sqrt(sq[counts.indptr[1:]] - sq[counts.indptr[:-1]])
        norms[norms == 0] = 1.0
        counts.data /= np.repeat(norms, np.diff(counts.indptr)).astype(np.float32)
        return counts


def _count_matrix(grams: Sequence[Sequence[str]], flat_ids: list[int], n_cols: int) -> Any:
    """CSR (texts x n-grams) of counts from the n-gram ids of all texts in a row (-1 = unknown)."""
    from scipy import sparse

    rows = np.repeat(np.arange(len(grams)), [len(g) for g in grams])
    cols = np.asarray(flat_ids, dtype=np.int64)
    keep = cols >= 0
    m = sparse.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])),
                          shape=(len(grams), n_cols))
    m.sum_duplicates()
    return m


@dataclass
class LexicalModel:
    """Multinomial naive Bayes over the featurizer's TF-IDF: per-class feature log-probabilities."""

    featurizer: Featurizer
    log_prob: np.ndarray  # (n_features, n_classes)

    @classmethod
    def fit(cls, featurizer: Featurizer, x: Any, labels: np.ndarray, n_classes: int,
            alpha: float = 0.05) -> LexicalModel:
        onehot = np.zeros((x.shape[0], n_classes), dtype=np.float32)
        onehot[np.arange(x.shape[0]), labels] = 1.0
        feature_count = np.asarray(x.T @ onehot, dtype=np.float64) + alpha
        log_prob = np.log(feature_count) - np.log(feature_count.sum(axis=0, keepdims=True))
        return cls(featurizer=featurizer, log_prob=log_prob.astype(np.float32))

    def scores_matrix(self, x: Any) -> np.ndarray:
        """Per-class log-likelihoods, shifted so each row's best is 0 (comparable across texts)."""
        s = np.asarray(x @ self.log_prob)
        return s - s.max(axis=1, keepdims=True)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.scores_matrix(self.featurizer.matrix(texts))

    def score_one(self, text: str) -> np.ndarray:
        idx, val = self.featurizer.vector(ngrams(text))
        if not len(idx):
            return np.zeros(self.log_prob.shape[1], np.float32)
        s = val @ self.log_prob[idx]
        return s - s.max()

    # -- artefact arrays (no pickle) -------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        vocab = self.featurizer.vocab
        words = _SEP.join(sorted(vocab, key=vocab.__getitem__)).encode("utf-8")
        return {
            "lex_vocab": np.frombuffer(words, dtype=np.uint8),
            "lex_idf": self.featurizer.idf,
            "lex_log_prob": self.log_prob,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LexicalModel:
        raw = arrays["lex_vocab"].tobytes().decode("utf-8")
        words = raw.split(_SEP) if raw else []
        featurizer = Featurizer(vocab={w: i for i, w in enumerate(words)}, idf=arrays["lex_idf"].astype(np.float32))
        log_prob = arrays["lex_log_prob"].astype(np.float32)
        if log_prob.shape[0] != len(words) or featurizer.idf.shape != (len(words),):
            raise ValueError("lexical arrays do not match the vocabulary")
        return cls(featurizer=featurizer, log_prob=log_prob)
