"""The early-exit cascade: exit-threshold choice, predict/predict_many agreement, artefact round trip (fast tier)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from skills.routing import Router
from skills.routing.artefact import ArtefactError
from skills.routing.cascade import MIN_TAU, choose_tau

from .phrasings import OUT_OF_SCOPE_TEST, held_out_rows, train_rows


def _texts() -> list[str]:
    return [r["text"] for r in held_out_rows()] + OUT_OF_SCOPE_TEST


def _same(a, b) -> bool:
    """Same routing decision (intent, flag, stage, ranking); probabilities equal up to float noise."""
    return (a.intent, a.oos, a.stage, [i for i, _ in a.top]) == (b.intent, b.oos, b.stage, [i for i, _ in b.top]) \
        and abs(a.confidence - b.confidence) < 1e-4


def test_tau_admits_the_confident_rows_until_stage_one_costs_accuracy():
    n = 1000
    conf = np.linspace(1.0, 0.0, n, endpoint=False)
    full = np.ones(n, bool)
    stage1 = np.ones(n, bool)
    stage1[600:] = False  # below confidence 0.4 stage 1 errs where the full model does not
    tau, metrics = choose_tau(conf, np.ones(n, bool), stage1, full)
    # The first wrong row (conf 0.4) pushes the bound over 0.2 %; the floor then lifts tau to 0.5.
    assert tau == MIN_TAU and metrics["exit_rate"] == pytest.approx(0.5, abs=0.002) and metrics["accuracy_loss"] == 0.0
    stage1[:] = True
    stage1[100:] = False
    tau, metrics = choose_tau(conf, np.ones(n, bool), stage1, full)
    assert conf[100] < tau <= conf[99] and metrics["exit_rate"] == 0.1


def test_tau_counts_rows_where_stage_one_beats_the_full_model_but_only_within_the_bound():
    n = 1000
    conf = np.linspace(1.0, 0.0, n, endpoint=False)
    stage1 = np.ones(n, bool)
    full = np.ones(n, bool)
    stage1[50] = False  # one loss near the top, offset by wins just below it
    full[51:53] = False
    tau, metrics = choose_tau(conf, np.ones(n, bool), stage1, full)
    # The raw difference is negative, but one loss and two wins have a bound of (-1 + 1.645*sqrt 3)/1000 > 0.2 %.
    assert tau > conf[50] and metrics["accuracy_loss"] == 0.0


def test_tau_respects_eligibility_and_never_exits_when_the_first_row_already_costs():
    conf = np.array([0.99, 0.98, 0.97])
    tau, _ = choose_tau(conf, np.array([True, True, True]), np.array([False, True, True]), np.ones(3, bool))
    assert tau is None
    tau, metrics = choose_tau(conf, np.array([False, True, True]), np.array([False, True, True]), np.ones(3, bool))
    assert tau == 0.97 and metrics["exit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert choose_tau(np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, bool))[0] is None


@pytest.mark.parametrize("with_oos", [False, True])
def test_predict_and_predict_many_route_each_text_the_same_way(cascade_embedders, with_oos):
    router = Router.train(train_rows(with_oos=with_oos), embedders=["cheap", "dear"])
    assert router.cascade is not None and router.cascade.parts == [0]
    router.cascade.tau = max(router.cascade.tau, 0.9)  # a tiny validation set lets nearly all exit
    single = [router.predict(t) for t in _texts()]
    batch = router.predict_many(_texts())
    assert all(_same(a, b) for a, b in zip(single, batch, strict=True)), [(a, b) for a, b in zip(single, batch, strict=True) if not _same(a, b)]
    assert {p.stage for p in single} == {1, 2}, "some messages exit early, some need the full model"
    for p in single:
        if p.stage == 1:
            assert not p.oos and p.confidence >= router.cascade.tau


def test_an_early_exit_skips_the_expensive_embedder(cascade_embedders):
    cheap, dear = cascade_embedders
    router = Router.train(train_rows(), embedders=["cheap", "dear"])
    before = (cheap.calls, dear.calls)
    stages = [router.predict(t).stage for t in _texts()]
    assert cheap.calls - before[0] == len(stages)
    assert dear.calls - before[1] == stages.count(2)


def test_the_cascade_survives_the_artefact_round_trip(cascade_embedders, tmp_path: Path):
    router = Router.train(train_rows(with_oos=True), embedders=["cheap", "dear"])
    loaded = Router.load(router.save(tmp_path / "router.npz"))
    assert loaded.cascade is not None and loaded.cascade.tau == router.cascade.tau
    assert loaded.cascade.calibration == router.cascade.calibration
    assert [loaded.predict(t) for t in _texts()] == [router.predict(t) for t in _texts()]
    with np.load(tmp_path / "router.npz", allow_pickle=False) as z:
        assert json.loads(z["meta_json"].tobytes())["stage1"]["tau"] == router.cascade.tau


def test_an_artefact_without_a_cascade_always_uses_the_full_model(cascade_embedders, tmp_path: Path):
    router = Router.train(train_rows(with_oos=True), embedders=["cheap", "dear"])
    path = router.save(tmp_path / "router.npz")
    # What an artefact written before the cascade existed looks like: no stage1 meta, no stage1 arrays.
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("stage1_")}
    meta = json.loads(arrays["meta_json"].tobytes())
    del meta["stage1"]
    arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(path, **arrays)
    old = Router.load(path)
    router.cascade = None
    assert old.cascade is None
    assert [old.predict(t) for t in _texts()] == [router.predict(t) for t in _texts()]
    assert all(p.stage == 2 for p in old.predict_many(_texts()))


def test_an_artefact_whose_stage_one_arrays_are_missing_is_refused(cascade_embedders, tmp_path: Path):
    path = Router.train(train_rows(), embedders=["cheap", "dear"]).save(tmp_path / "router.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "stage1_weights"}
    np.savez(path, **arrays)
    with pytest.raises(ArtefactError, match="stage-1"):
        Router.load(path)


def test_no_cascade_without_a_cheap_and_an_expensive_embedder_or_when_switched_off(cascade_embedders):
    assert Router.train(train_rows(), embedders=["dear"]).cascade is None
    assert Router.train(train_rows(), embedders=["cheap"]).cascade is None
    off = Router.train(train_rows(), embedders=["cheap", "dear"], cascade=False)
    assert off.cascade is None and all(p.stage == 2 for p in off.predict_many(_texts()))
