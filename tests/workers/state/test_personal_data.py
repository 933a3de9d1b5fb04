"""The workers provide every per-user store the webapp's export, erasure and retention expect."""

from __future__ import annotations

from testkit.personas import alice
from webapp.actions.personal_data import EXPECTED, MEDIA, AgedPersonalDataStore, Registry
from workers.state import session
from workers.state.personal_data import STORES, register_stores


def test_the_workers_register_every_expected_store():
    registry = Registry()
    assert registry.missing() == list(EXPECTED)
    register_stores(registry)
    assert registry.missing() == [] and [s.name for s in registry.stores()] == list(EXPECTED)
    assert isinstance(registry.aged(MEDIA), AgedPersonalDataStore)
    register_stores(registry)  # idempotent
    assert len(registry.stores()) == len(STORES)


def test_the_session_store_exports_and_erases_through_the_keyspace(worker_settings):
    registry = Registry()
    register_stores(registry)
    session.append_turn("corp", "cid", alice.user_id, [{"role": "user", "text": "hi"}], "1")
    [sessions] = [s for s in registry.stores() if s.name == "redis.sessions"]
    assert [e["text"] for s in sessions.export_user("corp", alice.user_id) for e in s["entries"]] == ["hi"]
    assert sessions.erase_user("corp", alice.user_id) == 1
    assert sessions.export_user("corp", alice.user_id) == []
