"""The router with the real packaged embedders (slow tier: loading the models takes seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skills.routing import OOS, Router
from skills.routing import embedders as emb

from .phrasings import OUT_OF_SCOPE_TEST, chinese, english, held_out_rows, train_rows

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

# First 8 dimensions of sentence-transformers' own all-MiniLM-L6-v2 output for these texts.
MINILM_REFERENCE = {
    "book a meeting room for five people": [0.0431, -0.0654, 0.0113, 0.0355, -0.0646, 0.0305, 0.0092, -0.0951],
    "I lost my card, please freeze it": [-0.082, 0.0285, 0.011, 0.0381, 0.0302, -0.0153, -0.0208, 0.0381],
}


def _accuracy(router: Router, rows: list[dict[str, str]]) -> float:
    return float(np.mean([router.predict(r["text"]).intent == r["intent"] for r in rows]))


def _top1(router: Router, rows: list[dict[str, str]]) -> float:
    """Best in-scope intent, ignoring the OOS flag (whose threshold a tiny val split makes noisy)."""
    return float(np.mean([router.predict(r["text"]).top[0][0] == r["intent"] for r in rows]))


def test_the_numpy_minilm_matches_sentence_transformers():
    e = emb.build(["minilm"])
    texts = list(MINILM_REFERENCE)
    got = e.encode(texts)
    np.testing.assert_allclose(got[:, :8], np.array(list(MINILM_REFERENCE.values())), atol=2e-3)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(e.encode_one(texts[0]), got[0], atol=1e-5)


@pytest.mark.parametrize("name", ["e5", "use", "minilm"])
def test_each_embedder_gives_unit_vectors_of_its_width_for_chinese_and_english(name):
    e = emb.build([name])
    x = e.encode(["明天北京天气怎么样", "what's the weather in Beijing tomorrow"])
    assert x.shape == (2, e.dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)
    assert e.encode([]).shape == (0, e.dim)


@pytest.fixture(scope="module")
def bilingual_router() -> Router:
    return Router.train(train_rows(with_oos=True), embedders="auto")


def test_chinese_and_english_unseen_phrasings_route_well_above_a_floor(bilingual_router):
    assert bilingual_router.embedder_names == ["use", "e5"]
    for rows in (chinese(held_out_rows()), english(held_out_rows())):
        # Six intents, so chance is 17 %.
        assert _top1(bilingual_router, rows) >= 0.9
        assert _accuracy(bilingual_router, rows) >= 0.75


def test_english_only_training_picks_minilm_and_routes_well():
    router = Router.train(english(train_rows()), embedders="auto")
    assert router.embedder_names == ["use", "minilm"]
    assert _top1(router, english(held_out_rows())) >= 0.9
    assert _accuracy(router, english(held_out_rows())) >= 0.8


def test_gibberish_and_off_topic_messages_are_out_of_scope(bilingual_router):
    predictions = [bilingual_router.predict(t) for t in OUT_OF_SCOPE_TEST]
    assert sum(p.oos for p in predictions) >= 3, predictions
    assert all(p.intent == OOS for p in predictions if p.oos)
    assert not bilingual_router.predict("帮我申请五天年假").oos


def test_the_evaluate_cli_prints_one_json_object_with_the_agreed_keys(tmp_path: Path):
    train = train_rows(with_oos=True)
    # A few marked val rows exercise the "split: val chooses the threshold" path.
    for row in train[::7]:
        row["split"] = "val"
    test = held_out_rows() + [{"text": t, "intent": OOS} for t in OUT_OF_SCOPE_TEST]
    (tmp_path / "train.json").write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "test.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "skills.routing.evaluate", "--train", str(tmp_path / "train.json"),
         "--test", str(tmp_path / "test.json"), "--embedders", "use"],  # USE alone keeps it quick
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    result = json.loads(lines[0])
    for key in ("accuracy", "in_scope_accuracy", "oos_recall", "macro_f1", "n", "latency_ms_p50",
                "latency_ms_p95", "train_seconds"):
        assert key in result, key
    assert result["n"] == len(test)
    assert result["accuracy"] >= 0.75
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"]
    assert "trained router" in out.stderr  # logs go to stderr


def test_the_evaluate_cli_omits_oos_recall_when_the_test_has_no_oos_rows(tmp_path: Path):
    (tmp_path / "train.json").write_text(json.dumps(chinese(train_rows()), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "test.json").write_text(json.dumps(chinese(held_out_rows()), ensure_ascii=False), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "skills.routing.evaluate", "--train", str(tmp_path / "train.json"),
         "--test", str(tmp_path / "test.json"), "--embedders", "use"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    result = json.loads(out.stdout)
    assert "oos_recall" not in result and result["accuracy"] >= 0.8


def test_the_evaluate_cli_fails_loudly_on_a_malformed_file(tmp_path: Path):
    (tmp_path / "train.json").write_text(json.dumps({"text": "not a list"}), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "skills.routing.evaluate", "--train", str(tmp_path / "train.json"),
         "--test", str(tmp_path / "train.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0 and out.stdout == ""
