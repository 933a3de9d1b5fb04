"""The intent router: train on labelled examples, predict an intent with calibrated confidence or out-of-scope."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import embedders as emb
from .cache import EmbeddingCache, Progress, encode_cached
from .calibration import Calibration, calibrate
from .cascade import Cascade, best_in_scope, choose_tau
from .classifier import LinearModel, TrainConfig, log_softmax
from .lexical import Featurizer, LexicalModel

log = logging.getLogger(__name__)

OOS = "oos"
VAL_SHARE = 0.15
# Out-of-scope rows are few and scattered over every topic; counting each 4 times teaches the
# classifier to put probability on `oos` (CLINC150 val: in-scope 95.0 % at 85 % OOS recall with 4,
# 94.5 % without, 94.9 % with 8).
OOS_WEIGHT = 4


@dataclass(frozen=True)
class Example:
    """One labelled utterance; split "val" marks rows kept for calibration and the threshold."""

    text: str
    intent: str
    split: str = "train"

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Example:
        return cls(text=str(row["text"]), intent=str(row["intent"]), split=str(row.get("split") or "train"))


@dataclass(frozen=True)
class Prediction:
    """Where a message goes: `intent` is OOS when `oos`; `top` ranks in-scope intents anyway.

    `in_scope` is the score the OOS threshold was applied to (1 - p(oos) when the router learned an
    oos class, else `confidence`). `stage` 1: the cheap early-exit head answered; 2: the full model."""

    intent: str
    confidence: float
    oos: bool
    top: list[tuple[str, float]]
    in_scope: float = 1.0
    stage: int = 2

    def to_dict(self) -> dict[str, Any]:
        return {"intent": self.intent, "confidence": self.confidence, "oos": self.oos,
                "top": [[i, p] for i, p in self.top], "in_scope": self.in_scope, "stage": self.stage}


@dataclass
class Router:
    """Embeddings (+ n-gram naive Bayes) → linear softmax; loaded once per worker, then only predicts.

    With a `cascade`, a head on the cheap embedder answers confident messages first (see cascade.py);
    without one (older artefacts, a single embedder), every message gets the full model."""

    labels: list[str]
    embedder_names: list[str]
    linear: LinearModel
    lexical: LexicalModel
    calibration: Calibration
    meta: dict[str, Any] = field(default_factory=dict)
    cascade: Cascade | None = None
    _embedder: emb.ConcatEmbedder | None = field(default=None, repr=False)

    # -- prediction -------------------------------------------------------------------------------

    @property
    def embedder(self) -> emb.ConcatEmbedder:
        if self._embedder is None:
            self._embedder = emb.build(self.embedder_names)
        return self._embedder

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def predict(self, text: str, k: int = 3) -> Prediction:
        """Route one message (embeds it, so this is the per-message cost)."""
        lex = self.lexical.score_one(text)[None, :]
        if self.cascade is None:
            return self._decide(self._probs(self.embedder.encode_one(text)[None, :], lex), k)[0]
        parts = self.embedder.parts
        vecs = {i: parts[i].encode_one(text)[None, :] for i in self.cascade.parts}
        first = self._stage1(vecs, lex, k)
        if first[0] is not None:
            return first[0]
        # Sequential, not side by side: the cheap part is already paid for.
        vecs.update((i, p.encode_one(text)[None, :]) for i, p in enumerate(parts) if i not in vecs)
        return self._decide(self._probs(_joined(vecs), lex), k)[0]

    def predict_many(self, texts: Sequence[str], k: int = 3) -> list[Prediction]:
        """Route many messages; each gets what `predict` would give it (same early-exit rule)."""
        texts = list(texts)
        lex = self.lexical.scores(texts)
        if self.cascade is None:
            return self._decide(self._probs(self.embedder.encode(texts), lex), k)
        parts = self.embedder.parts
        vecs = {i: parts[i].encode(texts) for i in self.cascade.parts}
        out = self._stage1(vecs, lex, k)
        rest = [j for j, p in enumerate(out) if p is None]
        stage2: dict[int, Prediction] = {}
        if rest:
            vecs = {i: v[rest] for i, v in vecs.items()}
            vecs.update((i, p.encode([texts[j] for j in rest])) for i, p in enumerate(parts) if i not in vecs)
            stage2 = dict(zip(rest, self._decide(self._probs(_joined(vecs), lex[rest]), k), strict=True))
        return [p if p is not None else stage2[j] for j, p in enumerate(out)]

    def _stage1(self, vecs: dict[int, np.ndarray], lex: np.ndarray, k: int) -> list[Prediction | None]:
        """Stage 1's prediction for the rows it answers, None for the rest."""
        assert self.cascade is not None
        probs = self.cascade.probs(_joined(vecs), lex)
        exits = np.flatnonzero(self.cascade.exits(probs))
        out: list[Prediction | None] = [None] * len(probs)
        stage1 = self._decide(probs[exits], k, self.cascade.calibration, stage=1)
        for j, p in zip(exits.tolist(), stage1, strict=True):
            out[j] = p
        return out

    def _probs(self, x: np.ndarray, lex: np.ndarray) -> np.ndarray:
        return self.calibration.probs(self.linear.logits(x), lex)

    def _decide(self, probs: np.ndarray, k: int, calibration: Calibration | None = None,
                stage: int = 2) -> list[Prediction]:
        cal = calibration or self.calibration
        in_scope = np.array([label != OOS for label in self.labels])
        scoped = np.where(in_scope, probs, -1.0)
        scores = cal.in_scope_score(probs, scoped.argmax(axis=1))
        out = []
        for row, p, score in zip(scoped, probs, scores.tolist(), strict=True):
            order = np.argsort(-row)[: max(1, min(k, int(in_scope.sum())))]
            best = int(order[0])
            conf = float(p[best])
            is_oos = score < cal.threshold
            out.append(Prediction(
                intent=OOS if is_oos else self.labels[best],
                confidence=round(conf, 6),
                oos=is_oos,
                top=[(self.labels[j], round(float(p[j]), 6)) for j in order],
                in_scope=round(score, 6),
                stage=stage,
            ))
        return out

    # -- training ---------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        examples: Iterable[Example | Mapping[str, Any]],
        embedders: Sequence[str] | str = "auto",
        cache: EmbeddingCache | str | Path | None = None,
        config: TrainConfig | None = None,
        refit: bool = True,
        cascade: bool = True,
        progress: Progress | None = None,
    ) -> Router:
        """Fit a router. Rows with split "val" choose the lexical weight, temperature and OOS threshold;
        without any, a stratified share of the training rows is carved out for that. With `refit`
        the final model then learns from all rows (the calibration is kept). With `cascade` and both
        a cheap and an expensive embedder, an early-exit head on the cheap one is fitted too, its
        exit threshold chosen on the same validation rows. `progress` is told how embedding goes."""
        started = time.perf_counter()
        rows = [e if isinstance(e, Example) else Example.from_dict(e) for e in examples]
        if not rows:
            raise ValueError("no training examples")
        labels = sorted({r.intent for r in rows})
        if len([lbl for lbl in labels if lbl != OOS]) < 2:
            raise ValueError("need at least two in-scope intents to train a router")
        names = emb.auto_names([r.text for r in rows]) if embedders == "auto" else list(embedders)
        if isinstance(cache, (str, Path)):
            cache = EmbeddingCache(cache)
        index = {lbl: i for i, lbl in enumerate(labels)}
        y = np.array([index[r.intent] for r in rows], dtype=np.int64)
        fit_idx, val_idx = split_for_validation(rows, y)
        texts = [r.text for r in rows]

        embedder = emb.build(names)
        t0 = time.perf_counter()
        misses = cache.embedded if cache is not None else 0
        x = encode_cached(embedder, texts, cache, progress)
        embedded = cache.embedded - misses if cache is not None else len(texts) * len(names)
        embed_seconds = time.perf_counter() - t0
        log.info("embeddings of %d texts with %s in %.1fs (%d embedded, the rest cached)",
                 len(texts), embedder.name, embed_seconds, embedded)

        cfg = config or TrainConfig()
        featurizer, grams = Featurizer.fit(texts)
        oos_index = index.get(OOS)
        linear = LinearModel.fit(x, y, len(labels), cfg, rows=_weighted(fit_idx, y, oos_index))
        lexical = LexicalModel.fit(featurizer, grams[fit_idx], y[fit_idx], len(labels))
        calibration = calibrate(
            logits=linear.logits(x[val_idx]),
            lex=lexical.scores_matrix(grams[val_idx]),
            y=y[val_idx],
            oos_index=oos_index,
        )
        cheap = [i for i, p in enumerate(embedder.parts) if getattr(p, "cheap", False)]
        stage1: Cascade | None = None
        cascade_meta: dict[str, Any] = {"note": "off"}
        if cascade and cheap and len(cheap) < len(embedder.parts) and len(val_idx):
            lex_val = lexical.scores_matrix(grams[val_idx])
            full = calibration.probs(linear.logits(x[val_idx]), lex_val)
            stage1, cascade_meta = _fit_stage1(x[:, embedder.columns(cheap)], y, fit_idx, val_idx, lex_val,
                                               _predicted(full, calibration), cheap, len(labels), cfg, oos_index)
        if refit and len(val_idx):
            everything = np.arange(len(y))
            weight = _refit_oos_weight(fit_idx, everything, y, oos_index)
            refit_cfg = dataclasses.replace(cfg, epochs=cfg.refit_epochs, lr=cfg.refit_lr)
            rows_all = _weighted(everything, y, oos_index, weight)
            linear = LinearModel.fit(x, y, len(labels), refit_cfg, rows=rows_all, init=linear)
            if stage1 is not None:
                stage1.linear = LinearModel.fit(x[:, embedder.columns(cheap)], y, len(labels), refit_cfg,
                                                rows=rows_all, init=stage1.linear)
            lexical = LexicalModel.fit(featurizer, grams, y, len(labels))
        seconds = time.perf_counter() - started
        meta = {
            "n_examples": len(rows),
            "n_val": len(val_idx),
            "train_seconds": round(seconds, 3),
            "embed_seconds": round(embed_seconds, 3),
            "embedded_texts": embedded,  # (text, model) pairs computed; 0 when all were embedded on write
            "val_metrics": calibration.metrics,
            "cascade": cascade_meta,
        }
        log.info("trained router on %d examples (%d intents) in %.1fs; val %s",
                 len(rows), len(labels), seconds, calibration.metrics)
        return cls(labels=labels, embedder_names=names, linear=linear, lexical=lexical,
                   calibration=calibration, meta=meta, cascade=stage1, _embedder=embedder)

    # -- artefact ---------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        from .artefact import save

        return save(self, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> Router:
        from .artefact import load

        return load(Path(path))

    @property
    def version(self) -> str:
        return str(self.meta.get("version", ""))


def _joined(vecs: dict[int, np.ndarray]) -> np.ndarray:
    """The embedder parts' vectors side by side, in part order."""
    return np.hstack([vecs[i] for i in sorted(vecs)]).astype(np.float32)


def _predicted(probs: np.ndarray, calibration: Calibration) -> np.ndarray:
    """Class index per row as a prediction has it: the best in-scope intent, or the oos class when flagged."""
    best, _, score = best_in_scope(probs, calibration)
    if calibration.oos_index is None:
        return best
    return np.where(score < calibration.threshold, calibration.oos_index, best)


def _fit_stage1(x1: np.ndarray, y: np.ndarray, fit_idx: np.ndarray, val_idx: np.ndarray, lex_val: np.ndarray,
                full_pred: np.ndarray, parts: list[int], n_classes: int, cfg: TrainConfig,
                oos_index: int | None) -> tuple[Cascade | None, dict[str, Any]]:
    """The early-exit head on the cheap columns `x1`: fit, calibrate and choose its exit threshold on the
    validation rows against the full model's predictions there."""
    linear = LinearModel.fit(x1, y, n_classes, cfg, rows=_weighted(fit_idx, y, oos_index))
    logits = linear.logits(x1[val_idx])
    calibration = calibrate(logits=logits, lex=lex_val, y=y[val_idx], oos_index=oos_index)
    probs = calibration.probs(logits, lex_val)
    best, conf, score = best_in_scope(probs, calibration)
    gold = y[val_idx]
    tau, metrics = choose_tau(conf, score >= calibration.threshold, best == gold, full_pred == gold)
    metrics["stage1_val"] = calibration.metrics
    if tau is None:
        return None, metrics
    return Cascade(parts=parts, linear=linear, calibration=calibration, tau=tau, metrics=metrics), metrics


def _weighted(rows: np.ndarray, y: np.ndarray, oos_index: int | None, weight: float = OOS_WEIGHT) -> np.ndarray:
    """Training rows with each oos row repeated `weight` times (a fractional part: a seeded share of them once more)."""
    if oos_index is None:
        return rows
    oos = rows[y[rows] == oos_index]
    whole = int(weight)
    share = np.random.default_rng(0).random(len(oos)) < weight - whole
    return np.concatenate([rows[y[rows] != oos_index], *([oos] * whole), oos[share]])


def _refit_oos_weight(fit_idx: np.ndarray, all_idx: np.ndarray, y: np.ndarray, oos_index: int | None) -> float:
    """The oos weight that gives the refit model the oos share of the calibrated one.

    The threshold was chosen on the first model's p(oos); the refit sees more oos rows (the
    validation ones), and with the same weight it would put more mass on oos and flag more
    in-scope messages than the threshold was chosen for.
    """
    if oos_index is None:
        return OOS_WEIGHT

    def ratio(rows: np.ndarray) -> float:
        n_oos = int((y[rows] == oos_index).sum())
        return n_oos / max(1, len(rows) - n_oos)

    return OOS_WEIGHT * ratio(fit_idx) / ratio(all_idx) if ratio(all_idx) else OOS_WEIGHT


def split_for_validation(rows: Sequence[Example], y: np.ndarray, share: float = VAL_SHARE,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fit, val): the rows marked val, else a stratified carve-out (classes with < 3 rows stay whole)."""
    marked = np.array([r.split == "val" for r in rows])
    if marked.any() and (~marked).any():
        return np.flatnonzero(~marked), np.flatnonzero(marked)
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) < 3:
            continue
        take = max(1, round(len(members) * share))
        val.extend(rng.choice(members, size=take, replace=False).tolist())
    val_idx = np.array(sorted(val), dtype=np.int64)
    fit_idx = np.setdiff1d(np.arange(len(rows)), val_idx)
    return fit_idx, val_idx


__all__ = ["OOS", "Example", "Prediction", "Router", "log_softmax"]
