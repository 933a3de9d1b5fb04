"""Routing data: seeded examples, audited edits and relabels, retention and a user's export/erase."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from skills import registry
from testkit.personas import alice, bob
from webapp.actions.routing import (
    RoutingError,
    do_delete_intent_example,
    do_import_intent_examples,
    do_log_routed_turn,
    do_purge_routed_turns,
    do_relabel_routed_turn,
    do_save_intent_example,
    do_seed_intent_examples,
    shipped_examples,
)
from webapp.models import AuditLog, IntentExample, RoutedTurn

pytestmark = pytest.mark.django_db


def logged(msg_id: str = "m1", text: str = "年假怎么申请", user: str = alice.user_id, **kw) -> RoutedTurn:
    do_log_routed_turn(msg_id=msg_id, tenant_id="corp1", user_id=user, text=text,
                       predicted_intent=kw.pop("intent", "chat"), confidence=0.4, skill="llm_chat", **kw)
    return RoutedTurn.objects.get(msg_id=msg_id)


def test_seeding_adds_every_shipped_example_once():
    assert do_seed_intent_examples() == len(shipped_examples())
    call_command("seed_intents", "--no-embed")
    assert IntentExample.objects.count() == len(shipped_examples())
    by_lang = IntentExample.objects.filter(intent="schedule.create")
    assert by_lang.filter(language="zh").count() >= 20 and by_lang.filter(language="en").count() >= 20
    assert set(IntentExample.objects.values_list("intent", flat=True)) == set(registry.intent_map())
    assert AuditLog.objects.filter(action="intent_example.seed").count() == 1


def test_seeding_leaves_an_example_the_admin_disabled_alone():
    do_seed_intent_examples()
    example = IntentExample.objects.get(text="你好")
    do_save_intent_example(bob.key, example, intent="chat", text="你好", enabled=False)
    do_seed_intent_examples()
    assert IntentExample.objects.get(text="你好").enabled is False


def test_example_edits_are_audited_and_need_a_known_intent():
    row = do_save_intent_example(bob.key, None, intent="docsearch.ask", text=" 报销走什么流程 ")
    assert (row.text, row.language, row.source) == ("报销走什么流程", "zh", "admin")
    with pytest.raises(RoutingError, match="no skill answers"):
        do_save_intent_example(bob.key, None, intent="weather.ask", text="明天下雨吗")
    do_delete_intent_example(bob.key, row)
    actions = list(AuditLog.objects.values_list("action", flat=True))
    assert actions == ["intent_example.save", "intent_example.delete"]


def test_imported_rows_are_added_once():
    rows = [{"text": "book a flight", "intent": "travel.book"}, {"text": "", "intent": "x"}]
    assert do_import_intent_examples("cli", rows) == 1
    assert do_import_intent_examples("cli", rows) == 0


def test_a_turn_is_logged_once_per_message():
    logged()
    do_log_routed_turn(msg_id="m1", tenant_id="corp1", user_id=alice.user_id, text="again", skill="echo")
    assert RoutedTurn.objects.get().text == "年假怎么申请"


def test_relabelling_keeps_the_text_as_an_example_and_audits_without_the_text():
    do_seed_intent_examples()
    turn = logged()
    example = do_relabel_routed_turn(bob.key, turn, "docsearch.ask")
    assert (example.intent, example.text, example.source) == ("docsearch.ask", "年假怎么申请", "relabel")
    assert (example.origin_tenant_id, example.origin_user_id) == ("corp1", alice.user_id)
    turn.refresh_from_db()
    assert (turn.corrected_intent, turn.corrected_by) == ("docsearch.ask", bob.key)
    audit = AuditLog.objects.get(action="routed_turn.relabel")
    assert audit.after == {"corrected_intent": "docsearch.ask"} and "年假" not in str(audit.detail)
    # Relabelled again: the earlier example of the same words is switched off.
    do_relabel_routed_turn(bob.key, turn, "chat")
    enabled = IntentExample.objects.filter(text="年假怎么申请", enabled=True)
    assert list(enabled.values_list("intent", flat=True)) == ["chat"]
    with pytest.raises(RoutingError):
        do_relabel_routed_turn(bob.key, turn, "weather.ask")


def test_routed_turns_older_than_the_retention_are_purged():
    old, new = logged("old"), logged("new")
    RoutedTurn.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    assert do_purge_routed_turns() == 1
    assert list(RoutedTurn.objects.values_list("msg_id", flat=True)) == ["new"]
    RoutedTurn.objects.filter(pk=new.pk).update(created_at=timezone.now() - timedelta(days=3))
    call_command("purge_routed_turns", "--days", "2")
    assert not RoutedTurn.objects.exists()


def test_export_and_erase_user_include_routed_turns_and_examples_made_from_them(
        resources, personal_data_stores, tmp_path):
    from webapp.actions.privacy import collect, do_erase_user

    resources.set(MEDIA_ROOT=str(tmp_path))
    do_seed_intent_examples()
    do_relabel_routed_turn(bob.key, logged("a1", "我的工资条在哪看"), "docsearch.ask")
    logged("b1", "hello", user=bob.user_id)
    exported = collect("corp1", alice.user_id)["postgresql"]
    assert [t["text"] for t in exported["routedturn"]] == ["我的工资条在哪看"]
    assert [(e["intent"], e["text"]) for e in exported["intentexample"]] == [("docsearch.ask", "我的工资条在哪看")]
    seeded = IntentExample.objects.filter(source="seed").count()
    counts = do_erase_user("corp1", alice.user_id, actor="dpo")
    assert (counts["postgresql.routedturn"], counts["postgresql.intentexample"]) == (1, 1)
    assert list(RoutedTurn.objects.values_list("user_id", flat=True)) == [bob.user_id]
    assert IntentExample.objects.filter(source="seed").count() == seeded
    assert do_erase_user("corp1", "", actor="dpo")["postgresql.intentexample"] == 0
