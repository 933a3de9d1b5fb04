"""A kill switch turns a skill off in one group conversation: routing there never picks it, run_skill
refuses it even when it was routed (or its button tapped) before the switch, other conversations keep it."""

from __future__ import annotations

import pytest

from skills.api import Turn
from skills.routing.router import Prediction
from testkit.envelopes import envelope
from tests.workers.routing.test_routers import embedding_router
from webapp.actions import versions
from webapp.actions.skills import do_update_skill_setting
from webapp.models import RoutedTurn
from workers import phrases
from workers.payload import StagePayload
from workers.skill_settings import SettingsCache
from workers.stages import run_skill
from workers.stages.preprocess import preprocess

pytestmark = pytest.mark.django_db
SALES, SUPPORT = "cidSalesGroup==", "cidSupportGroup=="


def switch_off(skill: str, conversation: str, tenant: str = "corp-test") -> None:
    do_update_skill_setting("bob", tenant, skill, False, conversation_id=conversation)
    versions.publish(versions.SETTINGS)


def group_help(conversation: str) -> dict:
    return envelope(text="help", conversation_type="2", conversation_id=conversation)


def test_routing_in_the_switched_off_group_never_picks_the_skill(worker_settings):
    switch_off("help", SALES)
    assert preprocess(group_help(SALES), "r1").turn.skill == "echo"
    assert preprocess(group_help(SUPPORT), "r2").turn.skill == "help"
    assert preprocess(envelope(text="help"), "r3").turn.skill == "help"  # private chats too


def test_the_cache_sees_the_switch_per_conversation(resources):
    cache = SettingsCache(resources.current, check_seconds=0)
    switch_off("schedule", SALES)
    assert "schedule" not in cache.enabled_skills("corp-test", SALES)
    assert "schedule" in cache.enabled_skills("corp-test", SUPPORT)
    assert "schedule" in cache.enabled_skills("corp-test")
    assert "schedule" not in cache.catalog("corp-test", SALES)  # help menus there do not offer it
    # Switched on again in that group, even though the tenant has it off everywhere else.
    do_update_skill_setting("bob", "corp-test", "schedule", False)
    do_update_skill_setting("bob", "corp-test", "schedule", True, conversation_id=SALES)
    versions.publish(versions.SETTINGS)
    assert "schedule" in cache.enabled_skills("corp-test", SALES)
    assert "schedule" not in cache.enabled_skills("corp-test", SUPPORT)


def test_a_trained_router_skips_the_switched_off_skill_too(resources):
    resources.current.router = embedding_router(Prediction("help", 0.97, False, top=[("help", 0.97)], stage=1))
    switch_off("help", SALES)
    routed = preprocess(group_help(SALES), "r1")
    assert routed.turn.skill != "help"
    kept = preprocess(group_help(SUPPORT), "r2")
    assert kept.turn.skill == "help"
    assert RoutedTurn.objects.get(msg_id=kept.msg_id).router_stage == 1  # the early exit answered


def stage_payload(skill: str, conversation: str) -> StagePayload:
    turn = Turn(msg_id=f"m-{conversation}", tenant_id="corp-test", conversation_id=conversation,
                conversation_type="2", user_id="alice", text="help", skill=skill, locale="en-US")
    return StagePayload(msg_id=turn.msg_id, turn=turn)


def test_run_skill_refuses_a_skill_switched_off_after_routing_chose_it(worker_settings):
    switch_off("help", SALES)
    refused = run_skill.run_skill(stage_payload("help", SALES))
    assert refused.reply is not None and refused.reply.text == phrases.phrase("skill_off", "en-US")
    assert refused.outcome == "switched_off"
    assert refused.record["timeline"]["outcome"] == "switched_off"
    answered = run_skill.run_skill(stage_payload("help", SUPPORT))
    assert answered.outcome == "ok" and answered.reply is not None and answered.reply.text != refused.reply.text
