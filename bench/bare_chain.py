"""Baseline for bench/pipeline.py: a bare chain of three no-op tasks on the same broker and pools."""

from __future__ import annotations

import redis

from conf.settings import get_settings
from workers.celery import make_app

app = make_app()
app.conf.imports = ()
app.conf.task_routes = {
    "bench.noop_a": {"queue": "dtbot.preprocess"},
    "bench.noop_b": {"queue": "dtbot.skills"},
    "bench.noop_c": {"queue": "dtbot.deliver"},
}
_settings = get_settings()
_redis = redis.Redis.from_url(_settings.redis_url)
DONE_KEY = _settings.redis_key_prefix + "bench:bare:done"


@app.task(name="bench.noop_a", acks_late=True)
def noop_a(payload: dict) -> dict:
    return payload


@app.task(name="bench.noop_b", acks_late=True)
def noop_b(payload: dict) -> dict:
    return payload


@app.task(name="bench.noop_c", acks_late=True)
def noop_c(payload: dict) -> None:
    _redis.incr(DONE_KEY)


def chain_for(payload: dict):
    """The three-stage chain, each stage on the queue its pipeline twin uses."""
    return noop_a.s(payload) | noop_b.s() | noop_c.s()
