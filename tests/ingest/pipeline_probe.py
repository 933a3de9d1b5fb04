"""A Celery app for one test: the four pipeline task names, each noting in Redis that it ran.

Started as a real worker (`celery -A tests.ingest.pipeline_probe worker`) to prove that what the
listener publishes is a message Celery runs through the whole chain.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from workers.celery import make_app

# A fresh app without the real task modules: the probe's tasks must be the only ones by these names.
app = make_app()
app.conf.imports = ()
app.conf.include = ()
app.conf.beat_schedule = {}

_redis = redis.Redis.from_url(os.environ.get("PROBE_REDIS_URL", "redis://127.0.0.1:6379/0"))
_PREFIX = os.environ.get("PROBE_PREFIX", "probe:")


def _note(stage: str, payload: Any) -> Any:
    msg_id = payload["msg_id"] if isinstance(payload, dict) else "?"
    _redis.rpush(f"{_PREFIX}{msg_id}", stage)
    return payload


@app.task(name="dtbot.pipeline.preprocess")
def preprocess(envelope: dict) -> dict:
    return _note("preprocess", envelope)


@app.task(name="dtbot.pipeline.run_skill")
def run_skill(payload: dict) -> dict:
    return _note("run_skill", payload)


@app.task(name="dtbot.pipeline.postprocess")
def postprocess(payload: dict) -> dict:
    return _note("postprocess", payload)


@app.task(name="dtbot.pipeline.deliver")
def deliver(payload: dict) -> dict:
    return _note("deliver", payload)
