"""Out of the box: trained on the skills' shipped examples only, the router sends phrasings it never saw
to the right built-in skill (zh and en), through the same policy the workers apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from skills import registry
from skills.routing.router import Router
from testkit.personas import alice
from tests.skills.routing.holdout import HOLDOUT
from workers.routing.policy import Thresholds, decide
from workers.routing.routers import label_of

pytestmark = pytest.mark.slow

CACHE = Path(__file__).resolve().parents[3] / "var" / "router" / "test-embeddings.sqlite3"
ALL = set(registry.skill_names())


@pytest.fixture(scope="module")
def router() -> Router:
    rows = [{"text": t, "intent": i} for n in registry.skill_names()
            for i, ts in registry.skill_class(n).examples.items() for t in ts]
    return Router.train(rows, cache=CACHE)


def routed(router: Router, text: str, fallback: str = "llm_chat") -> str:
    """The skill the worker would run (an LLM is configured: chat is the fallback); "?" = it asks."""
    turn = alice.turn(text)
    route = decide(router.predict(text, k=5), turn, enabled=ALL, intent_skill=registry.intent_map(),
                   fallback=fallback, thresholds=Thresholds(), label_of=label_of)
    return route.skill or "?"


def test_no_held_out_phrasing_is_among_the_training_examples():
    shipped = {t for n in registry.skill_names() for ts in registry.skill_class(n).examples.values() for t in ts}
    held_out = [t for langs in HOLDOUT.values() for ts in langs.values() for t in ts]
    assert not shipped & set(held_out)
    assert all(len(ts) >= 10 for langs in HOLDOUT.values() for ts in langs.values())
    assert set(HOLDOUT) == ALL


@pytest.mark.parametrize("text, skill", [
    ("下午三点提醒我交周报", "schedule"),
    ("年假怎么申请", "docsearch"),
    ("hi, how are you", "llm_chat"),
])
def test_the_issues_examples_are_routed_right(router, text, skill):
    assert routed(router, text) == skill


def test_held_out_phrasings_reach_their_skill(router):
    misses, total = [], 0
    per_group: dict[tuple[str, str], list[bool]] = {}
    for skill, langs in HOLDOUT.items():
        for lang, texts in langs.items():
            for text in texts:
                got = routed(router, text)
                total += 1
                per_group.setdefault((skill, lang), []).append(got == skill)
                if got != skill:
                    misses.append(f"{skill}/{lang}: {text!r} → {got}")
    accuracy = 1 - len(misses) / total
    assert accuracy >= 0.95, f"{accuracy:.1%} on {total}: " + "; ".join(misses)
    for (skill, lang), hits in per_group.items():
        assert sum(hits) / len(hits) >= 0.8, f"{skill}/{lang}: {sum(hits)}/{len(hits)}: {misses}"


def test_without_an_llm_out_of_scope_and_chat_go_to_echo(router):
    enabled = ALL - {"llm_chat"}  # how the workers see chat without an LLM
    turn = alice.turn("tell me a joke about cats")
    route = decide(router.predict(turn.text, k=5), turn, enabled=enabled, intent_skill=registry.intent_map(),
                   fallback="echo", thresholds=Thresholds(), label_of=label_of)
    assert route.skill == "echo"
