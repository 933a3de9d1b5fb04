"""Early exit: a linear head on the cheap embedder(s) answers confident messages before the expensive model runs.

Stage 1 sees the cheap embedders' columns (USE) plus the shared n-gram head, with its own
calibration. It answers when its calibrated top-1 probability is at least `tau` (and its in-scope
score above its own OOS threshold); every other message gets the expensive embedding (e5 / MiniLM)
and the full model, which alone decides out-of-scope. `tau` is chosen on the validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .calibration import Calibration
from .classifier import LinearModel

# Accuracy the early exit may cost on the validation rows, against the full model alone.
MAX_LOSS = 0.002
# Never exit below this confidence, whatever the validation rows say: a small validation set can
# let a low threshold through by luck (errors of the two stages cancelling out).
MIN_TAU = 0.5
Z_ONE_SIDED_95 = 1.645


@dataclass
class Cascade:
    """Stage 1: `parts` (indices into the router's embedder parts) → linear head → calibrated probs."""

    parts: list[int]
    linear: LinearModel
    calibration: Calibration
    tau: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def probs(self, x: np.ndarray, lex: np.ndarray) -> np.ndarray:
        return self.calibration.probs(self.linear.logits(x), lex)

    def exits(self, probs: np.ndarray) -> np.ndarray:
        """Per row, whether stage 1 answers: confident in its best in-scope intent and in scope by its own threshold."""
        _, conf, in_scope = best_in_scope(probs, self.calibration)
        return (conf >= self.tau) & (in_scope >= self.calibration.threshold)

    # -- artefact (arrays + JSON, no pickle) -------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"stage1_weights": self.linear.weights.astype(np.float32),
                "stage1_bias": self.linear.bias.astype(np.float32)}

    def to_meta(self) -> dict[str, Any]:
        return {"parts": self.parts, "tau": self.tau, "calibration": self.calibration.to_dict(),
                "metrics": self.metrics}

    @classmethod
    def from_artefact(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Cascade:
        return cls(parts=[int(i) for i in meta["parts"]],
                   linear=LinearModel(weights=arrays["stage1_weights"], bias=arrays["stage1_bias"]),
                   calibration=Calibration.from_dict(meta["calibration"]), tau=float(meta["tau"]),
                   metrics=dict(meta.get("metrics", {})))


def best_in_scope(probs: np.ndarray, calibration: Calibration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best in-scope intent, its probability, in-scope score) per row, as the router's prediction has them."""
    scoped = probs if calibration.oos_index is None else np.delete(probs, calibration.oos_index, axis=1)
    best = scoped.argmax(axis=1)
    if calibration.oos_index is not None:
        best = best + (best >= calibration.oos_index)
    return best, probs[np.arange(len(probs)), best], calibration.in_scope_score(probs, best)


def choose_tau(confidence: np.ndarray, eligible: np.ndarray, stage1_correct: np.ndarray,
               full_correct: np.ndarray, max_loss: float = MAX_LOSS) -> tuple[float | None, dict[str, Any]]:
    """The lowest exit threshold whose accuracy loss against the full model stays within `max_loss`,
    by a one-sided 95 % upper bound on the validation rows rather than the raw difference.

    Rows are admitted from the most confident down. Among admitted rows, `worse` are those stage 1
    gets wrong and the full model right, `better` the reverse; the loss is (worse - better) / n and
    its standard error about sqrt(worse + better) / n (McNemar's paired test). The raw difference on
    a few hundred validation rows is mostly noise: a carve where stage 1 happened to beat the full
    model let every message exit and cost a point on new data. The scan stops at the first prefix
    whose bound exceeds the budget, so the threshold is safe for every higher one too.
    Returns (tau, metrics); tau None: stage 1 should never answer.
    """
    n = len(confidence)
    if n == 0:
        return None, {"n": 0, "exit_rate": 0.0, "note": "no validation rows"}
    order = np.argsort(-np.where(eligible, confidence, -1.0), kind="stable")
    order = order[eligible[order]]
    worse = np.cumsum(full_correct[order] & ~stage1_correct[order])
    better = np.cumsum(stage1_correct[order] & ~full_correct[order])
    bound = (worse - better + Z_ONE_SIDED_95 * np.sqrt(worse + better)) / n
    taken = 0
    for i in range(len(order)):
        if bound[i] > max_loss + 1e-12:
            break
        # A cut may only fall between distinct confidences (equal ones exit together).
        if i + 1 == len(order) or confidence[order[i + 1]] < confidence[order[i]]:
            taken = i + 1
    # Any higher threshold admits a shorter prefix, also within budget: raising it to the floor is safe.
    tau = max(float(confidence[order[taken - 1]]), MIN_TAU) if taken else 2.0
    exit_ = eligible & (confidence >= tau)
    full_acc = float(full_correct.mean())
    cascade_acc = float(np.where(exit_, stage1_correct, full_correct).mean())
    return (tau if exit_.any() else None), {
        "n": n, "tau": round(tau, 6), "exit_rate": round(float(exit_.mean()), 4),
        "accuracy_full": round(full_acc, 4), "accuracy_cascade": round(cascade_acc, 4),
        "accuracy_loss": round(full_acc - cascade_acc, 4), "stage1_accuracy": round(float(stage1_correct.mean()), 4)}
