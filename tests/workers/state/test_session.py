"""Session context: per-user or group-shared scope, sliding TTL, bounded turns, export and erasure."""

from __future__ import annotations

import pytest

from testkit.personas import alice, bob, mallory
from workers.payload import StagePayload
from workers.state import session


def entries(text: str) -> list[dict]:
    return [{"role": "user", "text": text}, {"role": "assistant", "text": f"re: {text}"}]


@pytest.fixture
def shared_groups(resources):
    return resources.set(SESSION_GROUP_SCOPE="shared").settings


def test_in_groups_each_member_has_an_own_session_by_default(worker_settings):
    session.append_turn("t", "cid-g", alice.user_id, entries("a1"), "2")
    session.append_turn("t", "cid-g", bob.user_id, entries("b1"), "2")
    assert [h["text"] for h in session.load_history("t", "cid-g", alice.user_id, "2")] == ["a1", "re: a1"]
    assert [h["text"] for h in session.load_history("t", "cid-g", bob.user_id, "2")] == ["b1", "re: b1"]


def test_a_shared_group_session_holds_every_member_with_the_speaker_named(shared_groups):
    session.append_turn("t", "cid-g", alice.user_id, entries("a1"), "2")
    session.append_turn("t", "cid-g", bob.user_id, entries("b1"), "2")
    history = session.load_history("t", "cid-g", mallory.user_id, "2")
    assert [(h["user"], h["text"]) for h in history] == [
        (alice.user_id, "a1"), (alice.user_id, "re: a1"), (bob.user_id, "b1"), (bob.user_id, "re: b1")]


def test_private_chats_stay_per_user_even_when_groups_share(shared_groups):
    session.append_turn("t", "cid-p", alice.user_id, entries("secret"), "1")
    assert session.load_history("t", "cid-p", mallory.user_id, "1") == []


def test_the_scope_setting_is_checked():
    from conf.settings import load

    with pytest.raises(ValueError, match="SESSION_GROUP_SCOPE"):
        load({"SESSION_GROUP_SCOPE": "everyone"})


def test_reading_or_writing_the_session_restarts_its_ttl(redis_conn, resources):
    # The TTL runs on Redis's clock (a relative EXPIRE), not a worker's: time passing is the TTL
    # running down in Redis, which the test does itself instead of sleeping.
    ttl = resources.set(SESSION_TTL_SECONDS="300").settings.session_ttl_seconds
    session.append_turn("t", "cid-s", alice.user_id, entries("hello"))
    skey = session.session_key("t", "cid-s", alice.user_id)
    assert redis_conn.ttl(skey) == ttl
    redis_conn.expire(skey, 5)  # what waiting 295 s would leave
    session.load_history("t", "cid-s", alice.user_id)
    assert redis_conn.ttl(skey) == ttl
    redis_conn.expire(skey, 5)
    session.append_turn("t", "cid-s", alice.user_id, entries("again"))
    assert redis_conn.ttl(skey) == ttl
    redis_conn.expire(skey, 0)  # the TTL ran out
    assert session.load_history("t", "cid-s", alice.user_id) == []


def test_the_session_keeps_only_the_last_turns(worker_settings):
    for i in range(worker_settings.session_max_turns + 4):
        session.append_turn("t", "cid-b", "bo", entries(f"m{i}"))
    history = session.load_history("t", "cid-b", "bo")
    assert len(history) == worker_settings.session_max_turns * 2
    assert history[-2]["text"] == f"m{worker_settings.session_max_turns + 3}"


def test_refresh_history_rereads_the_session_into_the_payload(worker_settings):
    turn = bob.turn("now", msg_id="m", tenant_id="t", conversation_id="cid-r")
    session.append_turn("t", "cid-r", bob.user_id, entries("earlier"))
    fresh = session.refresh_history(StagePayload(msg_id="m", turn=turn))
    assert [h["text"] for h in fresh.turn.history] == ["earlier", "re: earlier"]


def test_export_and_erase_cover_own_and_shared_sessions(shared_groups):
    session.append_turn("t", "cid-p", "$:LWCP_v1:$ext", entries("mine"), "1")
    session.append_turn("t", "cid-g", "$:LWCP_v1:$ext", entries("in group"), "2")
    session.append_turn("t", "cid-g", bob.user_id, entries("bob's"), "2")
    exported = session.export_user("t", "$:LWCP_v1:$ext")
    texts = sorted(e["text"] for s in exported for e in s["entries"])
    assert texts == ["in group", "mine", "re: in group", "re: mine"]
    assert session.erase_user("t", "$:LWCP_v1:$ext") == 4
    assert session.export_user("t", "$:LWCP_v1:$ext") == []
    assert [h["text"] for h in session.load_history("t", "cid-g", bob.user_id, "2")] == ["bob's", "re: bob's"]


def test_a_retried_turn_is_appended_once(resources):
    for _ in range(3):  # postprocess ran, then was retried or redelivered
        session.append_turn("t", "cid-r", alice.user_id, entries("a1"), "1", msg_id="msg-r1")
    session.append_turn("t", "cid-r", alice.user_id, entries("a2"), "1", msg_id="msg-r2")
    history = session.load_history("t", "cid-r", alice.user_id, "1")
    assert [e["text"] for e in history] == ["a1", "re: a1", "a2", "re: a2"]
    assert [e["msg_id"] for e in history] == ["msg-r1", "msg-r1", "msg-r2", "msg-r2"]
