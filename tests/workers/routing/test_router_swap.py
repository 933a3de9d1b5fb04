"""The trained router in a worker: loaded from the database at start, swapped for a newer version
without a restart, and routing real phrasings through preprocess (real models, real artefacts)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.management import call_command

from skills.api import Turn
from testkit.envelopes import envelope
from testkit.personas import alice
from webapp.actions.routing import do_seed_intent_examples, do_train_router
from webapp.models import IntentExample, RoutedTurn, RouterModel
from workers.routing import routers
from workers.routing.source import DatabaseArtefacts
from workers.stages.preprocess import preprocess

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CACHE_DIR = Path(__file__).resolve().parents[3] / "var" / "router"


@pytest.fixture
def router_dir(tmp_path, monkeypatch, worker_settings):
    # Artefact copies in a fresh directory; the embedding cache is shared so reruns embed nothing.
    monkeypatch.setattr("webapp.actions.routing.embedding_cache_path", lambda: CACHE_DIR / "test-embeddings.sqlite3")
    return tmp_path / "router"


def turn(text: str) -> Turn:
    return alice.turn(text)


def test_train_router_seeds_an_empty_table_stores_the_artefact_and_announces_it(router_dir, redis_conn,
                                                                                 worker_settings):
    call_command("train_router")
    model = RouterModel.objects.get()
    assert IntentExample.objects.filter(source="seed").count() == model.n_examples > 300
    assert model.size_bytes == len(bytes(model.artefact)) > 1000 and model.activated_at is not None
    assert model.metrics["val"]["in_scope_accuracy"] > 0.8
    assert redis_conn.get(f"{worker_settings.redis_key_prefix}version:router") == model.version


def test_a_worker_picks_up_a_newer_router_without_restarting(router_dir, worker_settings):
    first = do_train_router("test")
    router = routers.EmbeddingRouter(DatabaseArtefacts(router_dir), poll_seconds=0.2).start()
    try:
        assert router.wait_ready(60) and router.version == first.version
        assert router.route(turn("年假怎么申请")).skill == "docsearch"
        # An admin switches every docsearch example off and retrains: docsearch is unknown to v2.
        IntentExample.objects.filter(intent="docsearch.ask").update(enabled=False)
        second = do_train_router("test")
        deadline = time.monotonic() + 30
        while router.version != second.version and time.monotonic() < deadline:
            time.sleep(0.1)
        assert router.version == second.version
        assert router.route(turn("年假怎么申请")).skill != "docsearch"
        assert sorted(p.name for p in router_dir.glob("models/*.npz")) == sorted(
            [f"{first.version}.npz", f"{second.version}.npz"])
    finally:
        router.stop()


def test_preprocess_routes_with_the_trained_router_and_logs_the_version(router_dir, resources):
    model = do_train_router("test")
    router = routers.EmbeddingRouter(DatabaseArtefacts(router_dir), poll_seconds=60).start()
    resources.current.router = router
    try:
        assert router.wait_ready(60)
        payload = preprocess(envelope(text="下午三点提醒我交周报"), "r1")
        assert (payload.turn.skill, payload.turn.intent) == ("schedule", "schedule.create")
        logged = RoutedTurn.objects.get(msg_id=payload.msg_id)
        assert (logged.router_version, logged.decision) == (model.version, "routed")
    finally:
        router.stop()


def test_seeding_is_idempotent_after_training(router_dir):
    do_train_router("test")
    assert do_seed_intent_examples() == 0


def test_a_version_key_that_names_no_stored_model_falls_back_to_the_active_one(router_dir, redis_conn,
                                                                              worker_settings):
    model = do_train_router("test")
    redis_conn.set(f"{worker_settings.redis_key_prefix}version:router", "from-another-database")
    assert DatabaseArtefacts(router_dir).latest_version() == model.version
