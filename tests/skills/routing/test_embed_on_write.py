"""Examples are embedded when they are written (seed/import), so train_router only fits the classifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from skills.routing import embedders as emb
from testkit.personas import bob
from webapp.actions.routing import do_save_intent_example, do_train_router
from webapp.models import IntentExample

from .phrasings import train_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def hashed(hashing_embedder, monkeypatch, tmp_path: Path):
    # The cheap embedder stands in for the packaged models; the cache is a fresh SQLite file.
    monkeypatch.setattr(emb, "auto_names", lambda texts: ["hash"])
    monkeypatch.setattr("webapp.actions.routing.embedding_cache_path", lambda: tmp_path / "emb.sqlite3")
    (tmp_path / "rows.json").write_text(json.dumps(train_rows(), ensure_ascii=False), encoding="utf-8")
    return hashing_embedder


def test_imported_examples_are_embedded_on_write_and_training_embeds_nothing(hashed, tmp_path: Path):
    call_command("import_intents", str(tmp_path / "rows.json"))
    assert IntentExample.objects.count() == len(train_rows())
    calls = hashed.calls
    model = do_train_router("test", activate=False)
    assert model.metrics["embedded_texts"] == 0 and hashed.calls == calls


def test_without_embedding_on_write_training_embeds_everything(hashed, tmp_path: Path):
    call_command("import_intents", str(tmp_path / "rows.json"), "--no-embed")
    assert hashed.calls == 0
    model = do_train_router("test", activate=False)
    assert model.metrics["embedded_texts"] == IntentExample.objects.count()


def test_an_example_added_in_admin_is_the_only_one_training_embeds(hashed, tmp_path: Path, monkeypatch):
    call_command("import_intents", str(tmp_path / "rows.json"))
    intent = IntentExample.objects.values_list("intent", flat=True).first()
    assert intent is not None
    monkeypatch.setattr("webapp.actions.routing.known_intents", lambda: {intent})
    do_save_intent_example(bob.key, None, intent=intent, text="a phrasing nobody embedded yet")
    assert do_train_router("test", activate=False).metrics["embedded_texts"] == 1


def test_seeding_embeds_the_shipped_examples(hashed):
    call_command("seed_intents")
    assert hashed.calls > 0
    assert do_train_router("test", activate=False).metrics["embedded_texts"] == 0


def test_train_router_if_missing_trains_a_first_deployment_once(hashed, resources):
    from webapp.models import RouterModel

    # `resources` puts the Redis keys under this test's prefix: activation announces the version there.
    call_command("train_router", "--if-missing")  # empty table: seeds, trains, activates
    first = RouterModel.objects.get()
    assert first.activated_at is not None and first.n_examples == IntentExample.objects.count() > 0
    call_command("train_router", "--if-missing")  # a later start keeps the active router
    assert list(RouterModel.objects.values_list("version", flat=True)) == [first.version]
    call_command("train_router")  # without the flag an operator's retrain still happens
    assert RouterModel.objects.count() == 2


def test_embedding_reports_its_progress_a_batch_at_a_time(hashed, tmp_path: Path, monkeypatch):
    from skills.routing import cache as cache_module
    from skills.routing.cache import EmbeddingCache, fill

    monkeypatch.setattr(cache_module, "EMBED_BATCH", 16)
    texts = [r["text"] for r in train_rows()]
    told: list[tuple[int, int]] = []
    store = EmbeddingCache(tmp_path / "progress.sqlite3")
    assert fill(emb.build(["hash"]), texts, store, lambda done, more: told.append((done, more))) == len(set(texts))
    assert told[0] == (0, len(set(texts)))  # the work, found first
    assert all(done <= 16 for done, _ in told[1:]) and sum(done for done, _ in told) == len(set(texts))
    told.clear()
    fill(emb.build(["hash"]), texts, store, lambda done, more: told.append((done, more)))
    assert told == []  # everything cached: nothing to report


def test_import_intents_shows_the_embedding_progress_on_stderr(hashed, tmp_path: Path):
    import io

    out, err = io.StringIO(), io.StringIO()
    call_command("import_intents", str(tmp_path / "rows.json"), stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    n = len({r["text"] for r in train_rows()})
    assert lines[0].startswith("embedding examples: 0")
    assert lines[-1].startswith(f"embedding examples: done, {n}/{n} in ")
    assert f"{n} embedding(s) computed" in out.getvalue() and "embedding examples" not in out.getvalue()
