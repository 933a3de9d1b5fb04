"""Routing benchmark: accuracy, OOS recall, latency, training time, cold start and RSS per shared intent set.

    .venv/bin/python bench/routing.py [--datasets clinc150,banking77,smp2017] [--cache FILE | --cold]

Splits (the shared test splits are hidden): CLINC150 and SMP2017 train on `train` and are scored on
`val`; Banking77 is scored on a stratified 20 % carved from its training file. The threshold and
calibration rows are carved from the training part (the router does that when no `val` rows are
given). `clinc150_val_halves` is the evaluation CLI's setting (the train file carries `split: val`
rows): half of CLINC150 val goes in as val rows and the other half is scored, both ways round.
SMP2017 is research-only: its router is trained in a temp dir and deleted, never shipped.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Inference threads as a worker runs them (set before numpy loads its BLAS).
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see skills/routing/evaluate.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from skills.routing.cache import EmbeddingCache
from skills.routing.evaluate import read_examples, score
from skills.routing.router import Example, Router

DATA = Path()  # set in main() from --data

COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from skills.routing import Router
router = Router.load(sys.argv[1])
first = router.predict(sys.argv[3])
ready = time.perf_counter() - t0
for text in json.loads(sys.argv[4]):
    router.predict(text)
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"ready_seconds": ready, "first_intent": first.intent,
                  "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                  "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}))
"""


def splits(name: str) -> tuple[list[Example], list[Example]]:
    rows = read_examples(DATA / f"{name}_train.json")
    if any(r.split == "val" for r in rows):
        # Threshold rows are carved from train inside Router.train, so `val` stays unseen.
        return [Example(r.text, r.intent) for r in rows if r.split != "val"], [r for r in rows if r.split == "val"]
    rng = np.random.default_rng(0)
    labels = np.array([r.intent for r in rows])
    test: set[int] = set()
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        test.update(rng.choice(members, size=round(len(members) * 0.2), replace=False).tolist())
    return [r for i, r in enumerate(rows) if i not in test], [r for i, r in enumerate(rows) if i in test]


def cold_start(router: Router, sample: list[str]) -> dict[str, float]:
    """Fresh interpreter: import + load artefact + first predict, then RSS after a few more."""
    with tempfile.TemporaryDirectory() as tmp:
        path = router.save(Path(tmp) / "router.npz")
        size_mb = path.stat().st_size / 2**20
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD_START, str(path), str(ROOT), sample[0], json.dumps(sample[1:50])],
            capture_output=True, text=True, check=True, timeout=300,
        )
        wall = time.perf_counter() - t0
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "cold_start_seconds": round(child["ready_seconds"], 3),
        "cold_start_wall_seconds_incl_interpreter": round(wall, 3),
        "rss_mb": round(child["rss_mb"], 1),
        "peak_rss_mb": round(child["peak_rss_mb"], 1),
        "artefact_mb": round(size_mb, 2),
    }


def bench(name: str, cache: EmbeddingCache | None, embedders: str | list[str]) -> dict[str, Any]:
    train, test = splits(name)
    t0 = time.perf_counter()
    router = Router.train(train, embedders=embedders, cache=cache)
    train_seconds = time.perf_counter() - t0
    result: dict[str, Any] = {"dataset": name, "n_train": len(train), "embedders": router.embedder_names}
    result.update(score(router, test))
    result["without_cascade"] = without_cascade(router, test)
    result["train_seconds"] = round(train_seconds, 2)
    result["train_embed_seconds"] = router.meta.get("embed_seconds")
    result["embedding_cache"] = "none (cold)" if cache is None else str(cache.path)
    result["val_calibration"] = router.calibration.to_dict()
    result.update(cold_start(router, [ex.text for ex in test[:50]]))
    return result


def without_cascade(router: Router, test: list[Example]) -> dict[str, Any]:
    """The same router with its early exit off (every message through the full model), for comparison."""
    stage1, router.cascade = router.cascade, None
    try:
        full = score(router, test)
    finally:
        router.cascade = stage1
    keys = ("accuracy", "in_scope_accuracy", "oos_recall", "latency_ms_p50", "latency_ms_p95", "cpu_ms_p50",
            "cpu_ms_p95")
    return {"tau": stage1.tau if stage1 else None, **{k: full[k] for k in keys if k in full}}


def by_language(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Latency p50/p95 per language, with and without the early exit (SMP2017 is Chinese, the rest English)."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        if "latency_ms_p50" not in r or "without_cascade" not in r:
            continue
        full = r["without_cascade"]
        out.setdefault("zh" if r["dataset"] == "smp2017" else "en", {})[str(r["dataset"])] = {
            "exit_rate": r["exit_rate"],
            "cascade_p50": r["latency_ms_p50"], "cascade_p95": r["latency_ms_p95"],
            "full_p50": full["latency_ms_p50"], "full_p95": full["latency_ms_p95"],
        }
    return out


def val_halves(name: str, cache: EmbeddingCache | None, embedders: str | list[str]) -> dict[str, Any]:
    """The evaluation CLI's setting: the train file carries `split: val` rows. Half of `val` (stratified
    by a seeded shuffle) goes in as val rows, the other half is scored; then the other way round."""
    rows = read_examples(DATA / f"{name}_train.json")
    train = [Example(r.text, r.intent) for r in rows if r.split != "val"]
    val = [r for r in rows if r.split == "val"]
    order = np.random.default_rng(0).permutation(len(val))
    halves = [[val[i] for i in sorted(order[k::2])] for k in (0, 1)]
    folds = []
    for calib, test in (halves, halves[::-1]):
        router = Router.train(train + [Example(r.text, r.intent, "val") for r in calib], embedders=embedders,
                              cache=cache)
        folds.append(score(router, test))
    out: dict[str, Any] = {"dataset": f"{name}_val_halves", "folds": folds}
    for key in ("in_scope_accuracy", "oos_recall", "accuracy"):
        if key in folds[0]:
            out[key] = round(float(np.mean([f[key] for f in folds])), 4)
    return out


def throughput(texts: list[str]) -> dict[str, float]:
    """Batch embedding rate per model: what a cold (uncached) training pays per example."""
    from skills.routing import embedders as emb

    rates = {}
    for name in emb.EMBEDDERS:
        e = emb.build([name])
        e.encode(texts[:8])
        t0 = time.perf_counter()
        e.encode(texts)
        rates[f"{name}_texts_per_second"] = round(len(texts) / (time.perf_counter() - t0), 1)
    return rates


# Issue 4's targets: (dataset or "*", metric, bound, "min" | "max").
TARGETS = [
    ("clinc150", "in_scope_accuracy", 0.95, "min"),
    ("clinc150", "oos_recall", 0.85, "min"),
    ("clinc150_val_halves", "in_scope_accuracy", 0.95, "min"),
    ("clinc150_val_halves", "oos_recall", 0.85, "min"),
    ("banking77", "in_scope_accuracy", 0.94, "min"),
    ("smp2017", "in_scope_accuracy", 0.94, "min"),
    ("*", "latency_ms_p50", 15.0, "max"),
    ("*", "latency_ms_p95", 30.0, "max"),
    ("*", "cold_start_seconds", 2.0, "max"),
    ("*", "rss_mb", 600.0, "max"),
    ("clinc150", "train_seconds", 15.0, "max"),  # 15k examples, embedded on write (cache warm)
]


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (one row per dataset for "*")."""
    rows = []
    for dataset, metric, bound, kind in TARGETS:
        for r in results:
            if dataset in ("*", r["dataset"]) and metric in r:
                value = float(r[metric])
                met = value >= bound if kind == "min" else value <= bound
                rows.append({"dataset": r["dataset"], "metric": metric, "value": value,
                             "target": f"{'>=' if kind == 'min' else '<='} {bound}", "met": met})
    return rows


def _default_data() -> Path:
    # shared/ lies beside the checkout (CI, main) or two levels up (a helper's worktree).
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "intents").is_dir():
            return base / "shared" / "data" / "intents"
    return ROOT.parent / "shared" / "data" / "intents"


def main() -> int:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="clinc150,banking77,smp2017")
    parser.add_argument("--data", default=str(_default_data()), help="folder of <name>_train.json files")
    parser.add_argument("--embedders", default="auto")
    parser.add_argument("--cache", default=str(ROOT / "var" / "routing" / "embeddings.sqlite3"),
                        help="embedding cache (a first run fills it; later runs measure cached training)")
    parser.add_argument("--cold", action="store_true", help="no embedding cache: embed every example")
    parser.add_argument("--throughput", action="store_true", help="also measure batch embedding rates")
    args = parser.parse_args()
    DATA = Path(args.data)
    cache = None if args.cold else EmbeddingCache(args.cache)
    embedders = args.embedders if args.embedders == "auto" else args.embedders.split(",")
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
                    "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"],
                    "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"],
                    "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"]},
        "datasets": [bench(name, cache, embedders) for name in args.datasets.split(",") if name],
    }
    if "clinc150" in args.datasets.split(","):
        report["datasets"].append(val_halves("clinc150", cache, embedders))
    if args.throughput:
        texts = [r.text for r in read_examples(DATA / "clinc150_train.json")[:400]]
        texts += [r.text for r in read_examples(DATA / "smp2017_train.json")[:400]]
        report["embedding_throughput"] = throughput(texts)
    report["latency_by_language"] = by_language(report["datasets"])
    report["targets"] = targets(report["datasets"])
    report["machine"]["load_avg_1m_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
