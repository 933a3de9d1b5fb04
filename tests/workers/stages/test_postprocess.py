"""Postprocess: reply parts within DingTalk's limits, notes, apology, session, stamps."""

from __future__ import annotations

import json

import pytest

from skills.api import Reply
from testkit.personas import TENANT, Persona, alice, bob
from webapp.models import MessageRecord, UserProfile
from workers import phrases
from workers.stages.postprocess import MAX_PARTS, postprocess, reply_parts
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill
from workers.state import session

pytestmark = pytest.mark.django_db


def through_postprocess(text: str, who: Persona = alice, **message) -> dict:
    """The first three stages on one message: what deliver receives, as it travels (JSON)."""
    env = who.envelope(text, **message)
    return json.loads(json.dumps(postprocess(run_skill(preprocess(env, run_id="run-1"))).to_dict()))


def test_a_normal_reply_is_one_text_part(worker_settings):
    out = through_postprocess("hello")
    assert [p["text"] for p in out["replies"]] == ["You said: hello"]
    assert out["replies"][0]["kind"] == "text"


def test_a_long_reply_is_split_within_the_byte_limit(worker_settings):
    parts = reply_parts(Reply(text="\n".join(["句子" * 50] * 100)), [], 2000)
    assert 1 < len(parts) <= MAX_PARTS
    assert all(len(p.text.encode()) <= 2000 for p in parts)
    assert parts[0].meta == {"part": 1, "of": len(parts)}


def test_a_flood_is_cut_to_the_maximum_number_of_parts_with_a_note():
    parts = reply_parts(Reply(text="\n".join(["line"] * 5000)), [], 500)
    assert len(parts) == MAX_PARTS
    assert parts[-1].text.endswith(phrases.REPLY_CUT_EN)


def test_notes_are_added_to_the_reply(worker_settings):
    limit = worker_settings.input_max_chars
    out = through_postprocess("y" * (limit + 10))
    assert out["replies"][-1]["text"].endswith(phrases.truncated_note("y", limit))


def test_an_empty_reply_becomes_the_apology():
    assert reply_parts(Reply(text="  "), [], 1000)[0].text == phrases.APOLOGY_ZH


def test_the_session_remembers_the_turn_and_stays_bounded(worker_settings):
    for i in range(worker_settings.session_max_turns + 3):
        through_postprocess(f"message {i}", conversation_id="cid-e")
    history = session.load_history(TENANT, "cid-e", alice.user_id)
    assert len(history) == worker_settings.session_max_turns * 2
    assert [(h["role"], h["text"], h["user"]) for h in history[-2:]] == [
        ("user", f"message {i}", alice.user_id), ("assistant", f"You said: message {i}", alice.user_id)]
    assert history[-1]["content"] == history[-1]["text"]  # chat-completion readers use "content"


def test_the_session_expires_after_the_session_ttl(worker_settings, redis_conn):
    through_postprocess("hi", who=bob, conversation_id="cid-f")
    ttl = redis_conn.ttl(session.session_key(TENANT, "cid-f", bob.user_id))
    assert 0 < ttl <= worker_settings.session_ttl_seconds == 1800


def test_it_carries_skill_intent_user_and_stage_timestamps_for_deliver_to_write(worker_settings):
    out = through_postprocess("help")
    stamps = out["record"]
    assert (stamps["skill"], stamps["intent"]) == ("help", "help")
    assert stamps["preprocessed_at"] <= stamps["skill_done_at"] <= stamps["postprocessed_at"]
    assert UserProfile.objects.get(pk=stamps["user_id"]).staff_id == alice.staff_id
    record = MessageRecord.objects.get(msg_id=out["msg_id"])
    # Not written per stage: deliver (or a dead letter) writes them with the final status.
    assert (record.postprocessed_at, record.skill, record.user_id) == (None, "", None)
