"""Routing policy: a router's prediction → a skill, a clarifying question, or the fallback skill."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from skills.api import Reply, Turn
from skills.language import is_chinese
from skills.routing.router import Prediction

# The button callback that picks a skill: turn.params = {"type": "choose_skill", "skill", "intent",
# "text" (the original message), "msg_id" (of the question)}. The gateway turns the card callback
# into these params (it may carry the button's action as "action" instead of "type").
CHOOSE_SKILL = "choose_skill"


@dataclass(frozen=True)
class Thresholds:
    high: float = 0.6  # at or above: straight to the skill
    option_floor: float = 0.1  # a skill is offered in the question only with at least this
    max_options: int = 3


@dataclass(frozen=True)
class Route:
    """Where one turn goes; `reply` (a question) is sent instead of running a skill."""

    intent: str
    skill: str
    confidence: float
    decision: str = "routed"  # routed | clarify | fallback | chosen | callback | keyword
    top: tuple[tuple[str, float], ...] = ()
    router_version: str = ""
    text: str | None = None  # replaces the turn's text (a chosen skill answers the original message)
    reply: dict[str, Any] | None = None
    predicted: str = ""  # the router's own answer ("oos" when out of scope), for the routed-turn log
    stage: int = 0  # the cascade head that answered: 1 early exit, 2 full model (0: no model)


def intent_of(skill: str, intent_skill: Mapping[str, str]) -> str:
    """The first intent `skill` declares (what the turn carries when the skill answers by default)."""
    return next((i for i, s in intent_skill.items() if s == skill), "")


LabelOf = Callable[[str, str], str]  # (skill, lang) → a short name for a button


def _lang(turn: Turn, text: str) -> str:
    if text:
        return "zh" if is_chinese(text) else "en"
    return "zh" if turn.locale.lower().startswith("zh") else "en"


def decide(
    prediction: Prediction,
    turn: Turn,
    *,
    enabled: Collection[str],
    intent_skill: Mapping[str, str],
    fallback: str,
    thresholds: Thresholds,
    label_of: LabelOf,
    version: str = "",
) -> Route:
    """High confidence → the intent's skill; unsure between skills → ask; out of scope → fallback.

    Probabilities are summed per skill (schedule.create and schedule.change both mean schedule);
    disabled skills are never chosen nor offered.
    """
    top = tuple((i, float(p)) for i, p in prediction.top)
    per_skill: dict[str, float] = {}
    best_intent: dict[str, tuple[str, float]] = {}
    for intent, p in top:
        skill = intent_skill.get(intent)
        if skill is None or skill not in enabled:
            continue
        per_skill[skill] = per_skill.get(skill, 0.0) + p
        if skill not in best_intent or p > best_intent[skill][1]:
            best_intent[skill] = (intent, p)
    ranked = sorted(per_skill.items(), key=lambda kv: -kv[1])
    common: dict[str, Any] = {"top": top, "router_version": version, "predicted": prediction.intent,
                              "stage": prediction.stage}
    if prediction.oos or not ranked:
        return Route(intent=intent_of(fallback, intent_skill), skill=fallback, confidence=prediction.confidence,
                     decision="fallback", **common)
    skill, p = ranked[0]
    if p >= thresholds.high:
        return Route(intent=best_intent[skill][0], skill=skill, confidence=round(p, 6), **common)
    options = [(s, q) for s, q in ranked if q >= thresholds.option_floor][: thresholds.max_options]
    if len(options) >= 2:
        choices = [(s, best_intent[s][0]) for s, _ in options]
        return Route(intent=best_intent[skill][0], skill="", confidence=round(p, 6), decision="clarify",
                     reply=clarify_reply(turn, choices, fallback, label_of).to_dict(), **common)
    if options:  # one plausible skill, nothing to choose between
        return Route(intent=best_intent[skill][0], skill=skill, confidence=round(p, 6), **common)
    return Route(intent=intent_of(fallback, intent_skill), skill=fallback, confidence=round(p, 6),
                 decision="fallback", **common)


def clarify_reply(turn: Turn, choices: list[tuple[str, str]], fallback: str, label_of: LabelOf) -> Reply:
    """An action card asking which skill was meant; each button re-runs the message with that skill."""
    lang = _lang(turn, turn.text)
    zh = lang == "zh"

    def button(skill: str, intent: str, title: str) -> dict[str, Any]:
        params = {"type": CHOOSE_SKILL, "skill": skill, "intent": intent, "text": turn.text, "msg_id": turn.msg_id}
        return {"title": title, "action": CHOOSE_SKILL, "params": params}

    buttons = [button(s, i, label_of(s, lang)) for s, i in choices]
    if fallback not in {s for s, _ in choices}:
        buttons.append(button(fallback, "", "都不是" if zh else "None of these"))
    lines = [f"{n}. {b['title']}" for n, b in enumerate(buttons, 1)]
    if zh:
        text = "我不太确定你想做什么，请选择：\n\n" + "\n".join(lines)
        title = "你是想……"
    else:
        text = "I'm not sure what you'd like me to do. Please choose:\n\n" + "\n".join(lines)
        title = "Did you mean…"
    return Reply(text=text, kind="action_card", title=title, buttons=buttons,
                 meta={"clarify": [s for s, _ in choices]})


def callback_route(
    turn: Turn, *, enabled: Collection[str], intent_skill: Mapping[str, str], skills: Collection[str],
    fallback: str,
) -> Route | None:
    """The route a button callback asks for, or None when the turn is not a callback.

    choose_skill → that skill answers the original text; a skill's own button (params "skill", or
    an action named "<skill>.<verb>" such as schedule.confirm) → back to that skill.
    """
    params = turn.params or {}
    if not params:
        return None
    if CHOOSE_SKILL in (params.get("type"), params.get("action")):
        wanted = str(params.get("skill") or "")
        skill = wanted if wanted in enabled else fallback
        intent = str(params.get("intent") or "") if skill == wanted else ""
        intent = intent or intent_of(skill, intent_skill)
        return Route(intent=intent, skill=skill, confidence=1.0, decision="chosen",
                     text=str(params.get("text") or turn.text))
    target = str(params.get("skill") or "")
    if not target:
        action = str(params.get("action") or "")
        prefix = action.split(".", 1)[0] if "." in action else ""
        target = prefix if prefix in skills else ""
    if not target:
        return None
    skill = target if target in enabled else fallback
    return Route(intent=turn.intent, skill=skill, confidence=1.0, decision="callback")
