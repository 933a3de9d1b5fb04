"""Routing policy: confident → skill, unsure → a question with buttons, out of scope → fallback;
disabled skills are never chosen or offered; button callbacks go back to their skill."""

from __future__ import annotations

import json

from skills import registry
from skills.api import Turn
from skills.routing.router import Prediction
from testkit.personas import alice
from workers.routing.policy import CHOOSE_SKILL, Thresholds, callback_route, decide
from workers.routing.routers import label_of

INTENTS = registry.intent_map()
ALL = set(registry.skill_names())


def turn(text: str = "帮我看看这个", **kw) -> Turn:
    return alice.turn(text, **kw)


def predicted(*top: tuple[str, float], oos: bool = False) -> Prediction:
    return Prediction(intent="oos" if oos else top[0][0], confidence=top[0][1], oos=oos, top=list(top))


def route(prediction: Prediction, text: str = "帮我看看这个", enabled=ALL, fallback: str = "llm_chat"):
    return decide(prediction, turn(text), enabled=enabled, intent_skill=INTENTS, fallback=fallback,
                  thresholds=Thresholds(high=0.6, option_floor=0.1), label_of=label_of, version="v7")


def test_a_confident_prediction_goes_straight_to_its_skill():
    r = route(predicted(("schedule.create", 0.93), ("docsearch.ask", 0.05)))
    assert (r.skill, r.intent, r.decision, r.reply, r.router_version) == ("schedule", "schedule.create", "routed",
                                                                          None, "v7")


def test_intents_of_one_skill_add_up_before_the_threshold():
    r = route(predicted(("schedule.change", 0.4), ("schedule.create", 0.35), ("chat", 0.25)))
    assert (r.skill, r.intent, r.decision) == ("schedule", "schedule.change", "routed")
    assert r.confidence == 0.75


def test_an_unsure_prediction_asks_which_skill_with_a_button_each():
    r = route(predicted(("docsearch.ask", 0.45), ("schedule.list", 0.35), ("chat", 0.15), ("echo", 0.05)),
              text="明天的培训资料")
    assert r.decision == "clarify" and r.skill == ""
    assert r.reply is not None and r.reply["kind"] == "action_card"
    json.dumps(r.reply)
    buttons = r.reply["buttons"]
    assert [b["params"]["skill"] for b in buttons] == ["docsearch", "schedule", "llm_chat"]
    assert [b["title"] for b in buttons] == ["文档问答", "日程提醒", "AI 对话"]
    assert buttons[0]["action"] == CHOOSE_SKILL
    assert buttons[0]["params"] == {"type": CHOOSE_SKILL, "skill": "docsearch", "intent": "docsearch.ask",
                                    "text": "明天的培训资料", "msg_id": turn().msg_id}
    assert "1. 文档问答" in r.reply["text"]


def test_the_question_offers_none_of_these_when_the_fallback_is_not_an_option():
    r = route(predicted(("docsearch.ask", 0.5), ("schedule.list", 0.45)), text="training material tomorrow")
    assert [b["params"]["skill"] for b in r.reply["buttons"]] == ["docsearch", "schedule", "llm_chat"]
    assert r.reply["buttons"][-1]["title"] == "None of these"
    assert r.reply["text"].startswith("I'm not sure")


def test_out_of_scope_goes_to_the_fallback_skill():
    r = route(predicted(("docsearch.ask", 0.3), ("chat", 0.2), oos=True))
    assert (r.skill, r.intent, r.decision, r.predicted) == ("llm_chat", "chat", "fallback", "oos")
    assert route(predicted(("schedule.list", 0.2), oos=True), fallback="echo").skill == "echo"


def test_a_disabled_skill_is_never_chosen_nor_offered():
    enabled = ALL - {"docsearch"}
    r = route(predicted(("docsearch.ask", 0.97), ("schedule.list", 0.02)), enabled=enabled)
    assert (r.skill, r.decision) == ("llm_chat", "fallback")
    r = route(predicted(("docsearch.ask", 0.5), ("schedule.list", 0.3), ("chat", 0.2)), enabled=enabled)
    assert r.decision == "clarify"
    assert "docsearch" not in [b["params"]["skill"] for b in r.reply["buttons"]]


def test_one_plausible_skill_below_the_threshold_still_answers():
    r = route(predicted(("schedule.list", 0.5), ("docsearch.ask", 0.05)))
    assert (r.skill, r.decision) == ("schedule", "routed")


def callback(params: dict, enabled=ALL, **kw):
    return callback_route(turn("", params=params, **kw), enabled=enabled, intent_skill=INTENTS, skills=ALL,
                          fallback="echo")


def test_choosing_a_skill_reruns_the_original_message_with_it():
    r = callback({"type": CHOOSE_SKILL, "skill": "docsearch", "intent": "docsearch.ask", "text": "年假有几天"})
    assert (r.skill, r.intent, r.text, r.decision) == ("docsearch", "docsearch.ask", "年假有几天", "chosen")
    # The gateway may pass the button's action instead of its type.
    r = callback({"action": CHOOSE_SKILL, "skill": "schedule", "text": "明天开会"})
    assert (r.skill, r.intent) == ("schedule", "schedule.create")


def test_choosing_a_disabled_skill_gets_the_fallback():
    r = callback({"type": CHOOSE_SKILL, "skill": "docsearch", "intent": "docsearch.ask", "text": "x"},
                 enabled=ALL - {"docsearch"})
    assert (r.skill, r.intent) == ("echo", "echo")


def test_a_skills_own_buttons_go_back_to_that_skill():
    assert callback({"action": "schedule.confirm", "key": "k"}, intent="schedule.create").skill == "schedule"
    assert callback({"skill": "docsearch", "page": 2}).skill == "docsearch"
    assert callback({"action": "something.else"}) is None
    assert callback({}) is None
