"""Router training, prediction, artefact and calibration, on a cheap embedder (fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skills.routing import OOS, Example, Router
from skills.routing import embedders as emb
from skills.routing.artefact import ArtefactError, read_meta
from skills.routing.cache import EmbeddingCache, encode_cached
from skills.routing.calibration import IN_SCOPE_FLAG_BUDGET, Calibration, calibrate
from skills.routing.lexical import Featurizer, LexicalModel, ngrams
from skills.routing.router import split_for_validation

from .phrasings import OUT_OF_SCOPE_TEST, held_out_rows, train_rows


def _accuracy(router: Router, rows: list[dict[str, str]]) -> float:
    return float(np.mean([router.predict(r["text"]).intent == r["intent"] for r in rows]))


def test_it_routes_unseen_phrasings_well_above_chance(hashing_embedder):
    router = Router.train(train_rows(), embedders=["hash"])
    # Six intents: chance is 17 %. A broken classifier, calibration or fusion cannot reach this.
    assert _accuracy(router, held_out_rows()) >= 0.8


def test_a_router_trained_on_shuffled_labels_does_not_pass_the_floor(hashing_embedder):
    rows = train_rows()
    labels = [r["intent"] for r in rows]
    rng = np.random.default_rng(1)
    shuffled = [{"text": r["text"], "intent": lbl} for r, lbl in zip(rows, rng.permutation(labels), strict=True)]
    router = Router.train(shuffled, embedders=["hash"])
    assert _accuracy(router, held_out_rows()) < 0.5


def test_predict_returns_intent_confidence_top_k_and_oos_flag(hashing_embedder):
    router = Router.train(train_rows(), embedders=["hash"])
    p = router.predict("帮我订一个六人的会议室", k=3)
    assert p.intent == "book_room" and not p.oos
    assert 0.0 < p.confidence <= 1.0
    assert p.top[0][0] == "book_room" and len(p.top) == 3
    assert [s for _, s in p.top] == sorted((s for _, s in p.top), reverse=True)
    assert json.loads(json.dumps(p.to_dict()))["intent"] == "book_room"


def test_the_artefact_round_trip_gives_the_same_predictions(hashing_embedder, tmp_path: Path):
    router = Router.train(train_rows(with_oos=True), embedders=["hash"])
    path = router.save(tmp_path / "router.npz")
    loaded = Router.load(path)
    texts = [r["text"] for r in held_out_rows()] + OUT_OF_SCOPE_TEST
    assert [loaded.predict(t) for t in texts] == [router.predict(t) for t in texts]
    meta = read_meta(path)
    assert meta["version"] == loaded.version == router.version and meta["created_at"]
    assert meta["labels"] == router.labels and meta["embedders"] == ["hash"]
    assert "val_metrics" in meta and meta["calibration"]["threshold"] == router.threshold
    # Never pickle: numpy must be able to open it with pickling disabled.
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


def test_saving_twice_gives_two_versions_and_replaces_the_file_atomically(hashing_embedder, tmp_path: Path):
    router = Router.train(train_rows(), embedders=["hash"])
    router.save(tmp_path / "router.npz")
    first = router.version
    other = Router.train(train_rows(with_oos=True), embedders=["hash"])
    other.save(tmp_path / "router.npz")
    assert read_meta(tmp_path / "router.npz")["version"] != first
    assert [p.name for p in tmp_path.iterdir()] == ["router.npz"]


def test_loading_something_that_is_not_an_artefact_raises(tmp_path: Path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ArtefactError):
        Router.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ArtefactError):
        Router.load(tmp_path / "plain.npz")


def test_an_artefact_from_a_newer_format_is_refused(hashing_embedder, tmp_path: Path):
    router = Router.train(train_rows(), embedders=["hash"])
    path = router.save(tmp_path / "router.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta_json"].tobytes())
    meta["format_version"] = 99
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(ArtefactError, match="newer"):
        Router.load(path)


def test_out_of_scope_rows_set_a_threshold_that_flags_unlike_messages_only(hashing_embedder):
    router = Router.train(train_rows(with_oos=True), embedders=["hash"])
    assert OOS in router.labels and router.threshold > 0
    predictions = [router.predict(t) for t in OUT_OF_SCOPE_TEST + [r["text"] for r in held_out_rows()]]
    for p in predictions:
        assert p.oos == (p.in_scope < router.threshold) and (p.intent == OOS) == p.oos
        assert p.top[0][0] != OOS, "top-k offers in-scope intents only"
    assert router.predict("吃葡萄不吐葡萄皮").oos
    in_scope = predictions[len(OUT_OF_SCOPE_TEST):]
    assert sum(not p.oos for p in in_scope) >= 0.9 * len(in_scope)


def test_training_needs_two_in_scope_intents(hashing_embedder):
    with pytest.raises(ValueError):
        Router.train([{"text": "hello", "intent": "greet"}, {"text": "x", "intent": OOS}], embedders=["hash"])
    with pytest.raises(ValueError):
        Router.train([], embedders=["hash"])


def test_unknown_embedder_names_are_rejected():
    with pytest.raises(ValueError, match="unknown embedder"):
        emb.build(["word2vec"])


def test_rows_marked_val_are_the_validation_split_else_a_stratified_share_is_carved():
    rows = [Example(f"t{i}", "a" if i % 2 else "b", "val" if i < 4 else "train") for i in range(20)]
    y = np.array([0 if r.intent == "a" else 1 for r in rows])
    fit, val = split_for_validation(rows, y)
    assert list(val) == [0, 1, 2, 3] and len(fit) == 16
    rows = [Example(r.text, r.intent) for r in rows]
    fit, val = split_for_validation(rows, y)
    assert set(y[val]) == {0, 1} and not set(fit) & set(val) and len(fit) + len(val) == 20


def test_calibration_puts_the_threshold_between_in_scope_and_oos_confidence():
    rng = np.random.default_rng(0)
    n_in, n_oos, classes = 200, 40, 5  # class 4 is oos
    y = np.concatenate([rng.integers(0, 4, n_in), np.full(n_oos, 4)])
    logits = rng.normal(0, 0.3, (len(y), classes))
    logits[np.arange(n_in), y[:n_in]] += 4.0  # confident in-scope rows
    logits[n_in:, :4] += rng.normal(0, 0.3, (n_oos, 4))  # flat rows for oos
    cal = calibrate(logits, np.zeros_like(logits), y, oos_index=4)
    assert cal.metrics["in_scope_accuracy"] >= 0.95 and cal.metrics["oos_recall"] >= 0.9
    # The threshold applies to 1 - p(oos), at the budgeted quantile of the in-scope rows' scores.
    score = 1 - cal.probs(logits, np.zeros_like(logits))[:, 4]
    assert (score[:n_in] < cal.threshold).mean() <= IN_SCOPE_FLAG_BUDGET + 1 / n_in
    assert (score[n_in:] < cal.threshold).mean() >= 0.9


def test_the_oos_score_is_the_mass_off_the_oos_class_not_the_best_intents_probability():
    # Two near-tied intents (an in-scope message between neighbours) vs mass on the oos class.
    logits = np.log(np.array([[0.48, 0.47, 0.05], [0.6, 0.1, 0.3]]))
    cal = Calibration(temperature=1.0, oos_index=2)
    probs = cal.probs(logits, np.zeros_like(logits))
    np.testing.assert_allclose(cal.in_scope_score(probs, np.array([0, 0])), [0.95, 0.7], atol=1e-6)
    no_oos = Calibration(temperature=1.0)
    np.testing.assert_allclose(no_oos.in_scope_score(probs, np.array([0, 0])), [0.48, 0.6], atol=1e-6)


def test_without_oos_rows_nothing_is_flagged_out_of_scope(hashing_embedder):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(0, 1.0, (300, 4))
    logits[np.arange(300), y] += 2.0
    cal = calibrate(logits, np.zeros_like(logits), y, oos_index=None)
    assert cal.threshold == 0.0 and "oos_recall" not in cal.metrics
    router = Router.train(train_rows(), embedders=["hash"])
    assert OOS not in router.labels and not any(router.predict(t).oos for t in OUT_OF_SCOPE_TEST)


def test_lexical_model_keeps_chinese_keywords():
    texts = ["打开熊猫看书", "打开微信", "北京天气", "上海天气怎么样", "打开支付宝", "广州天气"]
    y = np.array([0, 0, 1, 1, 0, 1])
    featurizer, x = Featurizer.fit(texts, min_df=1)
    model = LexicalModel.fit(featurizer, x, y, 2)
    assert int(np.argmax(model.score_one("打开淘宝"))) == 0
    assert int(np.argmax(model.score_one("深圳天气"))) == 1
    assert "打开" in ngrams("打开淘宝")


def test_the_embedding_cache_embeds_each_text_once(hashing_embedder, tmp_path: Path):
    cache = EmbeddingCache(tmp_path / "emb.sqlite3")
    embedder = emb.build(["hash"])
    texts = ["hello", "world", "hello"]
    first = encode_cached(embedder, texts, cache)
    calls = hashing_embedder.calls
    again = encode_cached(embedder, texts + ["new"], cache)
    assert hashing_embedder.calls == calls + 1, "only the new text is embedded"
    np.testing.assert_array_equal(first, again[:3])
    np.testing.assert_allclose(again, embedder.encode(texts + ["new"]), rtol=1e-6)


def test_auto_picks_e5_for_chinese_and_minilm_for_english():
    assert emb.auto_names(["明天天气怎么样", "订会议室", "hello"]) == ["use", "e5"]
    assert emb.auto_names(["what's the weather", "book a room"]) == ["use", "minilm"]


def test_a_live_router_picks_up_a_new_version_and_survives_a_broken_file(hashing_embedder, tmp_path: Path):
    from skills.routing.live import LiveRouter

    path = tmp_path / "router.npz"
    live = LiveRouter(path, check_seconds=0)
    assert live.get() is None
    first = Router.train(train_rows(), embedders=["hash"])
    first.save(path)
    assert live.get().version == first.version
    second = Router.train(train_rows(with_oos=True), embedders=["hash"])
    second.save(path)
    assert live.get().version == second.version != first.version
    path.write_bytes(b"half-written garbage")
    assert live.get().version == second.version
