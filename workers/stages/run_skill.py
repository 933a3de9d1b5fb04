"""run_skill stage: pre_process → execute → post_process of the routed skill, within its timeout."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from conf import personal_data
from skills import registry
from skills.api import AISkillPlugin, Reply, SkillError, Turn
from workers import governor, phrases, shield, timeline
from workers.errors import SkillTimeout
from workers.payload import StagePayload
from workers.resources import current
from workers.stages import ai_card
from workers.state import ordering

log = logging.getLogger(__name__)


def preload_skills() -> None:
    """Import every registered skill now, at worker start: the first message should not pay for
    imports (`openai` alone takes ~3 s on 2 cores). Prefork children inherit the modules."""
    started = time.monotonic()
    for name in registry.skill_names():
        try:
            registry.skill_class(name)
        except Exception:
            log.exception("skill %s cannot be imported", name)
    log.info("skills preloaded in %.2f s", time.monotonic() - started)


def _call_hooks(skill: AISkillPlugin, turn: Turn, join: bool) -> Reply | Iterator[str]:
    """pre_process → execute → post_process; a stream of chunks is returned as is (for an AI
    card), or read whole into a markdown reply when `join` (no card possible)."""
    turn = skill.pre_process(turn)
    result = skill.execute(turn)
    if isinstance(result, Reply):
        return skill.post_process(turn, result)
    if not join:
        return result
    reply = ai_card.markdown_reply("".join(str(chunk) for chunk in result))
    return skill.post_process(turn, reply)


def call_with_timeout(
    skill: AISkillPlugin, turn: Turn, timeout: float, join: bool = True
) -> Reply | Iterator[str]:
    """Run the hooks in a daemon thread so a hung skill cannot hold the worker past `timeout`.

    The thread is abandoned on timeout (Python cannot kill it); it is a daemon, so it never
    blocks shutdown, and the soft time limit of the task is the last resort.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["reply"] = _call_hooks(skill, turn, join)
        except BaseException as exc:  # handed to the caller's thread, which maps it
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"skill-{skill.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise SkillTimeout(f"skill {skill.name!r} did not answer within {timeout:.1f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["reply"]


def _answered(payload: StagePayload, reply: Reply, outcome: str, llm: dict[str, Any] | None = None) -> StagePayload:
    record = timeline.note(payload.record, llm=llm, outcome=outcome)
    record["skill_done_at"] = current().clock.time()
    return payload.replace(reply=reply, outcome=outcome, record=record)


def with_apology(payload: StagePayload, outcome: str) -> StagePayload:
    """The payload carrying the standard apology instead of a skill's reply."""
    turn = payload.turn
    return _answered(payload, Reply(text=phrases.apology(turn.text, turn.locale or "zh-CN")), outcome)


def run_skill(payload: StagePayload) -> StagePayload:
    """Payload with `reply` set: the skill's answer, or a polite apology when the skill failed.

    A crash of the skill propagates to the task wrapper, which logs it with the msgId and turns
    it into the same apology (the one broad `except` of the pipeline).
    """
    if payload.reply is not None:
        # Preprocess already knows the answer (empty text, unsupported type).
        return _answered(payload, payload.reply, "preset")
    turn = payload.turn
    done = ai_card.remembered(turn.msg_id)
    if done is not None:
        # A retry after the card was finalized: the user has the answer; do not ask again.
        log.info("card %s already finished; handing on its reply", done.card.get("out_track_id"))
        return _answered(payload, done, "ok")
    # The tenant's configuration of the skill (admin settings); remote skills resolve here too.
    res = current()
    settings = res.skill_settings
    name = turn.skill or registry.FALLBACK_SKILL
    if not settings.allows(turn.tenant_id, name, turn.conversation_id):
        # Switched off after routing chose it (or a button of it was tapped): the switch wins.
        log.info("skill %s is switched off here; not running it", name)
        return _answered(payload, Reply(text=phrases.phrase("skill_off", turn.locale)), "switched_off")
    # Masking of personal data for external peers (policy knob) and the system-prompt leak filter.
    skill = shield.shielded(settings.skill(turn.tenant_id, name), bool(settings.knob("privacy.mask_external")))
    if skill.needs_catalog:
        turn = turn.replace(catalog=settings.catalog(turn.tenant_id, turn.conversation_id))
    # The data-flow audit (written with the final status): who outside saw the text, and what kind of
    # personal data it carried.
    payload = payload.with_record(recipients=list(skill.recipients()),
                                  personal_data=personal_data.classes_in(turn.text))
    endpoint = skill.ai_core()
    if not endpoint:
        return _answer(payload, skill, turn)

    def still_waiting(rank: int) -> None:
        # Waiting for a slot is progress: later messages of the conversation keep their place.
        ordering.touch(payload.msg_id, payload.order)

    try:
        with governor.current().slot(endpoint, turn.msg_id, f"{turn.tenant_id}:{turn.conversation_id}",
                                     res.settings.llm_slot_wait_seconds, on_wait=still_waiting) as waited:
            if waited >= 0.5:
                log.info("waited %.2f s for an answer slot of %s", waited, endpoint)
            payload = payload.replace(record=timeline.note(payload.record, llm_slot_wait_s=round(waited, 3)))
            return _answer(payload, skill, turn)
    except governor.SlotTimeout as exc:
        log.warning("%s", exc)
        return _answered(payload, Reply(text=phrases.slot_timeout(turn.text, turn.locale)), "busy")


def _answer(payload: StagePayload, skill: AISkillPlugin, turn: Turn) -> StagePayload:
    """The skill's answer: streamed into an AI card where possible, else one reply, within its timeout."""
    res = current()
    robot_code = str(payload.delivery.get("robot_code") or "")
    cards = ai_card.cards_enabled()
    if cards and ai_card.streams(skill):
        # The skill runs inside the card's iterator: the card shows up at once and every
        # failure of the skill ends on it as a polite, finalized error.
        chunks = ai_card.LazyAnswer(skill, turn)
        reply, outcome = ai_card.stream_answer(turn, robot_code, chunks, skill.timeout_seconds)
        return _answered(payload, reply, outcome, llm=chunks.timing())
    started = res.clock.monotonic()
    try:
        result = call_with_timeout(skill, turn, skill.timeout_seconds, join=not cards)
    except SkillError as exc:
        log.warning("skill %s declined: %s", skill.name, exc)
        if exc.user_message:
            return _answered(payload, Reply(text=exc.user_message), "skill_error")
        return with_apology(payload, "skill_error")
    except SkillTimeout as exc:
        log.error("%s", exc)
        return with_apology(payload, "timeout")
    if isinstance(result, Reply):
        return _answered(payload, result, "ok")
    # A skill that streamed without declaring it: the card opens now that execute returned.
    left = max(1.0, skill.timeout_seconds - (res.clock.monotonic() - started))
    reply, outcome = ai_card.stream_answer(turn, robot_code, result, left)
    return _answered(payload, reply, outcome)
