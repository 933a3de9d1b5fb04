"""The contract's chain is the workers' chain: the listener publishes what the workers would."""

from __future__ import annotations

import json

from contract.pipeline import PREPROCESS, STAGES, chain_field, stages_from
from workers.pipeline import build_chain, chain_from


def _rest_of(signature) -> list[dict]:
    tasks = list(signature.tasks)
    return json.loads(json.dumps([dict(t) for t in reversed(tasks[1:])]))


def test_the_chain_field_is_what_the_workers_chain_carries():
    assert chain_field(PREPROCESS.name) == _rest_of(build_chain({}))


def test_a_replay_from_any_stage_carries_the_stages_after_it():
    for stage in STAGES[:-1]:
        assert chain_field(stage.name) == _rest_of(chain_from(stage.name, {}))
    assert chain_field(STAGES[-1].name) == []
    assert [s.name for s in stages_from("postprocess")] == ["postprocess", "deliver"]


def test_every_stage_has_its_own_queue_and_a_dotted_task_name():
    assert len({s.queue for s in STAGES}) == len(STAGES)
    assert all(s.task.startswith("dtbot.pipeline.") for s in STAGES)
