"""Router in the worker: train_router time, cold start to a loaded router, routing latency and RSS.

Uses the database in DATABASE_URL (its enabled IntentExample rows; seeds them when empty) and prints
one JSON object. The cold start is measured in a fresh process, as a worker would do it: import the
worker's routing code, read the active version, fetch the artefact from the database, load the
embedding models, answer a first message.

    DATABASE_URL=... .venv/bin/python bench/router_worker.py [--import FILE] [--no-train]

With --import (e.g. CLINC150's 15k training rows) the rows are added and embedded on write first, as
`manage.py import_intents` does; `train_seconds` is then the `train_router` time on a warm cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLD_START = r"""
import time, json, os
t0 = time.perf_counter()
from workers.resources import setup_django
setup_django()
from workers.routing.source import DatabaseArtefacts
from workers.routing.routers import EmbeddingRouter
from skills.api import Turn
router = EmbeddingRouter(DatabaseArtefacts(os.environ["BENCH_ROUTER_DIR"]), poll_seconds=3600).start()
router.wait_ready(120)
ready = time.perf_counter() - t0
texts = ["下午三点提醒我交周报", "年假怎么申请", "hi, how are you", "what can you do", "复读：你好",
         "把明天的会改到下午4点", "how do I submit an expense claim", "tell me a joke"] * 5
lat = []
for i, text in enumerate(texts):
    turn = Turn(msg_id=f"b{i}", tenant_id="bench", conversation_id="c", conversation_type="1", user_id="u", text=text)
    s = time.perf_counter(); router.route(turn); lat.append((time.perf_counter() - s) * 1000)
lat.sort()
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print(json.dumps({"version": router.version, "cold_start_seconds": round(ready, 2),
                  "router_load_seconds": round(router.loaded_in_seconds or -1, 2),
                  "route_ms_p50": round(lat[len(lat) // 2], 1), "route_ms_p95": round(lat[int(len(lat) * 0.95)], 1),
                  "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024),
                  "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--import", dest="import_file", default="")
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    from workers.resources import setup_django

    setup_django()
    from webapp.actions.routing import do_embed_intent_examples, do_import_intent_examples, do_train_router

    out: dict[str, Any] = {}
    if args.import_file:
        out["imported"] = do_import_intent_examples("bench", json.loads(Path(args.import_file).read_text()))
        # What `manage.py import_intents` does after the insert: embed on write, so training only fits.
        started = time.perf_counter()
        out["embedded_on_write"] = do_embed_intent_examples()
        out["embed_on_write_seconds"] = round(time.perf_counter() - started, 2)
    if not args.no_train:
        started = time.perf_counter()
        model = do_train_router("bench/router_worker.py")
        out.update(train_seconds=round(time.perf_counter() - started, 2), n_examples=model.n_examples,
                   n_intents=len(model.intents), artefact_bytes=model.size_bytes,
                   embedded_during_training=model.metrics.get("embedded_texts"), val=model.metrics.get("val"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_ROUTER_DIR": tmp}
        runs = [json.loads(subprocess.run([sys.executable, "-c", COLD_START], env=env, cwd=ROOT, check=True,
                                          capture_output=True, text=True).stdout.strip().splitlines()[-1])
                for _ in range(2)]
    out["worker"] = runs[-1]
    out["cold_start_seconds_runs"] = [r["cold_start_seconds"] for r in runs]
    out["cold_start_seconds_median"] = statistics.median(out["cold_start_seconds_runs"])
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
