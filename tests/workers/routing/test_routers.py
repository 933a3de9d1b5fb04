"""Routing in preprocess: keyword routing before a model exists, per-tenant enabled skills, callbacks,
clarifying questions answered instead of a skill, and the routed-turn log."""

from __future__ import annotations

import json

import pytest

from skills.routing.router import Prediction
from testkit.envelopes import envelope
from testkit.personas import alice, bob
from webapp.actions import versions
from webapp.actions.skills import do_update_skill_setting
from webapp.models import RoutedTurn
from workers.routing import routers
from workers.routing.policy import CHOOSE_SKILL
from workers.stages.preprocess import preprocess

pytestmark = pytest.mark.django_db


class FixedModel:
    """A trained router's predict() answer, fixed (the real model is exercised in the slow tests)."""

    def __init__(self, prediction: Prediction) -> None:
        self.prediction = prediction

    def predict(self, text: str, k: int = 3) -> Prediction:
        return self.prediction


class FixedSource:
    def __init__(self, prediction: Prediction, version: str = "v1") -> None:
        self.model, self.version = FixedModel(prediction), version

    def latest_version(self) -> str | None:
        return self.version

    def load(self, version: str):
        return self.model

    def release(self) -> None:
        pass


@pytest.fixture
def installed(resources):
    """Install a router in this test's resources (what the worker start does with the trained one)."""

    def install(router: routers.Router) -> None:
        resources.current.router = router

    return install


def embedding_router(prediction: Prediction) -> routers.EmbeddingRouter:
    router = routers.EmbeddingRouter(FixedSource(prediction), poll_seconds=60)
    assert router.refresh()
    return router


def test_without_a_model_help_words_go_to_help_and_the_rest_to_the_fallback(worker_settings):
    assert preprocess(envelope(text="帮助"), "r1").turn.skill == "help"
    payload = preprocess(envelope(text="明天开会"), "r2")
    assert (payload.turn.skill, payload.turn.intent) == ("echo", "echo")
    assert RoutedTurn.objects.get(msg_id=payload.msg_id).decision == "keyword"


def test_a_disabled_help_skill_is_not_routed_to(worker_settings):
    env = envelope(text="help")
    do_update_skill_setting(bob.key, env["tenant_id"], "help", False, {})
    versions.publish(versions.SETTINGS)
    assert preprocess(env, "r1").turn.skill == "echo"


def test_an_unsure_router_makes_preprocess_answer_with_a_question(worker_settings, installed):
    installed(embedding_router(Prediction("docsearch.ask", 0.45, False,
                                          [("docsearch.ask", 0.45), ("schedule.list", 0.4), ("chat", 0.15)])))
    payload = preprocess(envelope(text="培训资料"), "r1")
    json.dumps(payload.to_dict())
    assert payload.reply.kind == "action_card" and payload.turn.skill == ""
    logged = RoutedTurn.objects.get(msg_id=payload.msg_id)
    assert (logged.decision, logged.predicted_intent, logged.router_version) == ("clarify", "docsearch.ask", "v1")
    assert logged.top[0] == ["docsearch.ask", 0.45]


def test_a_confident_router_fills_intent_skill_and_confidence(worker_settings, installed):
    installed(embedding_router(Prediction("schedule.create", 0.95, False, [("schedule.create", 0.95)])))
    payload = preprocess(envelope(text="下午三点提醒我交周报"), "r1")
    assert payload.reply is None
    turn = payload.turn
    assert (turn.skill, turn.intent, turn.confidence) == ("schedule", "schedule.create", 0.95)


def test_a_choose_skill_callback_reruns_the_original_text_with_that_skill(worker_settings, installed):
    installed(embedding_router(Prediction("chat", 0.99, False, [("chat", 0.99)])))
    turn = alice.turn("", msg_id="cb1", params={"type": CHOOSE_SKILL, "skill": "docsearch", "intent": "docsearch.ask",
                                 "text": "培训资料在哪"})
    routed, reply = routers.decide_turn(turn)
    assert reply is None
    assert (routed.skill, routed.intent, routed.text, routed.params) == ("docsearch", "docsearch.ask",
                                                                         "培训资料在哪", {})
    assert RoutedTurn.objects.get(msg_id="cb1").decision == "chosen"


def test_a_schedule_button_goes_back_to_schedule_without_asking_the_router(worker_settings, installed):
    installed(embedding_router(Prediction("chat", 0.99, False, [("chat", 0.99)])))
    turn = alice.turn("确认", msg_id="cb2", intent="schedule.create", params={"action": "schedule.confirm", "key": "k"})
    routed, _ = routers.decide_turn(turn)
    assert (routed.skill, routed.params["action"]) == ("schedule", "schedule.confirm")
    assert not RoutedTurn.objects.filter(msg_id="cb2").exists()


def test_a_router_that_cannot_load_keeps_keyword_routing(worker_settings):
    class Broken(FixedSource):
        def load(self, version: str):
            raise OSError("artefact unreadable")

    router = routers.EmbeddingRouter(Broken(Prediction("chat", 1.0, False, [])), poll_seconds=60)
    assert router.refresh() is False and router.version == ""
    turn = alice.turn("help")
    assert router.route(turn).decision == "keyword"


def test_a_newer_version_is_swapped_in_and_the_same_one_is_not_reloaded(worker_settings):
    source = FixedSource(Prediction("chat", 1.0, False, [("chat", 1.0)]), version="v1")
    router = routers.EmbeddingRouter(source, poll_seconds=60)
    assert router.refresh() and router.version == "v1"
    assert router.refresh() is False
    source.version = "v2"
    assert router.refresh() and router.version == "v2"
