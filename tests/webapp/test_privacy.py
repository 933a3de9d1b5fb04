"""export_user / erase_user cover every store, leave other people alone, and are audited without content."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from testkit.personas import Persona, alice, bob
from webapp.actions.audit import verify_chain
from webapp.actions.deadletters import do_dead_letter
from webapp.actions.privacy import subject_ref
from webapp.models import (
    AuditLog,
    DeadLetter,
    Document,
    DocumentCollection,
    MessageRecord,
    Reminder,
    ReminderFiring,
    UserProfile,
)
from webapp.models.routing import IntentExample, RoutedTurn
from workers.state import buttons, cards, session
from workers.state.media_store import MediaStore

pytestmark = pytest.mark.django_db

T = "corp-p"


def person(who: Persona, media_root, django_user_model) -> None:
    """One user's footprint in every store."""
    staff = who.staff_id
    profile = UserProfile.objects.create(tenant_id=T, staff_id=staff, nick=who.nick, department=who.department)
    MessageRecord.objects.create(msg_id=f"{staff}-1", tenant_id=T, user=profile, conversation_type="1",
                                 conversation_id=f"cid-{staff}", status="replied")
    MessageRecord.objects.create(msg_id=f"{staff}-2", tenant_id=T, user=profile, conversation_type="2",
                                 conversation_id="cid-group", status="dead")
    do_dead_letter(f"{staff}-2", "deliver", {"msg_id": f"{staff}-2", "turn": {
        "user_id": staff, "tenant_id": T, "text": f"{staff}'s secret question"}}, "poison")
    reminder = Reminder.objects.create(
        tenant_id=T, user_id=staff, title=f"{staff} dentist", event_at=timezone.now() + timedelta(days=1),
        fire_at=timezone.now(), source_key=f"{staff}-key")
    ReminderFiring.objects.create(reminder=reminder, occurrence_at=timezone.now())
    uploader = django_user_model.objects.create_user(staff)
    collection, _ = DocumentCollection.objects.get_or_create(name="handbook")
    doc = Document(collection=collection, title=f"{staff}'s upload", uploaded_by=uploader)
    doc.file.save(f"{staff}.txt", ContentFile(b"company text"), save=False)
    doc.save()
    RoutedTurn.objects.create(msg_id=f"{staff}-1", tenant_id=T, user_id=staff, text=f"{staff} asked this")
    IntentExample.objects.create(intent="chat", text=f"{staff}'s relabelled words", source="relabel",
                                 origin_tenant_id=T, origin_user_id=staff)
    session.append_turn(T, f"cid-{staff}", staff, [{"role": "user", "text": f"{staff} private"}], "1")
    session.append_turn(T, "cid-group", staff, [{"role": "user", "text": f"{staff} in group"}], "2")
    cards.remember(f"card-{staff}", {"user_id": staff, "tenant_id": T, "skill": "s"})
    buttons.remember(T, f"cid-{staff}", staff, skill="s", msg_id="m", buttons=[{"title": "OK", "action": "a"}])
    MediaStore(media_root).save([b"bytes of " + staff.encode()], tenant_id=T, user_id=staff, msg_id=f"{staff}-1",
                                index=0, kind="file", name="notes.txt", content_type="text/plain")


@pytest.fixture
def people(worker_settings, personal_data_stores, media_root, django_user_model, settings, tmp_path):
    settings.BASE_DIR = tmp_path  # uploaded documents land in this test's folder
    person(alice, media_root, django_user_model)
    person(bob, media_root, django_user_model)


def export(who: Persona) -> dict:
    out = io.StringIO()
    call_command("export_user", who.staff_id, "--tenant", T, "--actor", "dpo", stdout=out)
    return json.loads(out.getvalue())


def test_the_export_holds_every_store(people):
    data = export(alice)
    pg = data["postgresql"]
    assert [p["staff_id"] for p in pg["profiles"]] == [alice.staff_id]
    assert sorted(r["msg_id"] for r in pg["message_records"]) == ["alice-1", "alice-2"]
    assert pg["dead_letters"][0]["payload"]["turn"]["text"] == "alice's secret question"
    assert pg["reminders"][0]["title"] == "alice dentist" and len(pg["reminders"][0]["firings"]) == 1
    assert pg["documents_uploaded"][0]["title"] == "alice's upload"
    assert [r["text"] for r in pg["routedturn"]] == ["alice asked this"]  # routing log (platform)
    assert [r["text"] for r in pg["intentexample"]] == ["alice's relabelled words"]
    texts = sorted(e["text"] for s in data["redis"]["sessions"] for e in s["entries"])
    assert texts == ["alice in group", "alice private"]
    assert [c["user_id"] for c in data["redis"]["card_owners"]] == [alice.staff_id]
    assert len(data["redis"]["buttons"]) == 1
    assert [m["name"] for m in data["media"]] == ["notes.txt"]
    everything = json.dumps(data, ensure_ascii=False)
    assert bob.staff_id not in everything and bob.nick not in everything  # nobody else's data


def test_the_export_is_audited_under_a_pseudonym(people):
    export(alice)
    row = AuditLog.objects.get(action="user.export")
    assert row.target_id == subject_ref(T, alice.staff_id) and row.actor == "dpo"
    content = json.dumps(row.content(), ensure_ascii=False)
    assert alice.staff_id not in content and alice.nick not in content
    assert row.detail["counts"]["postgresql.profiles"] == 1


def test_erasure_removes_the_person_from_every_store_and_keeps_others(people, media_root):
    out = io.StringIO()
    call_command("erase_user", alice.staff_id, "--tenant", T, "--yes", "--actor", "dpo", stdout=out)
    counts = json.loads(out.getvalue())
    assert counts["postgresql.profiles"] == 1 and counts["media"] == 1
    after = export(alice)
    assert all(not rows for rows in after["postgresql"].values())  # records: anonymised, no longer hers
    assert after["redis"] == {"sessions": [], "card_owners": [], "buttons": []} and after["media"] == []
    # Records stay as the msgId backstop, without the person or her 1:1 chat id.
    private = MessageRecord.objects.get(msg_id="alice-1")
    assert private.user is None and private.conversation_id == ""
    assert MessageRecord.objects.get(msg_id="alice-2").conversation_id == "cid-group"
    assert not DeadLetter.objects.filter(msg_id="alice-2").exists()
    assert Document.objects.get(title="alice's upload").uploaded_by is None
    assert not RoutedTurn.objects.filter(user_id=alice.staff_id).exists()
    assert not IntentExample.objects.filter(origin_user_id=alice.staff_id).exists()
    # Bob is untouched, including his entry in the group session they shared.
    his = export(bob)
    assert len(his["postgresql"]["profiles"]) == 1 and len(his["media"]) == 1
    assert [e["text"] for s in his["redis"]["sessions"] for e in s["entries"] if s["key"].endswith(bob.staff_id)]


def test_the_erasure_audit_row_has_counts_but_no_personal_content(people):
    call_command("erase_user", alice.staff_id, "--tenant", T, "--yes", "--actor", "dpo", stdout=io.StringIO())
    row = AuditLog.objects.get(action="user.erase")
    assert row.target_id == subject_ref(T, alice.staff_id)
    content = json.dumps(row.content(), ensure_ascii=False)
    assert alice.staff_id not in content and alice.nick not in content
    assert verify_chain().ok


def test_erasure_needs_confirmation(people):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--yes"):
        call_command("erase_user", alice.staff_id, stdout=io.StringIO())
    assert UserProfile.objects.filter(staff_id=alice.staff_id).exists()


def test_erasure_without_a_tenant_covers_every_tenant(people, media_root):
    UserProfile.objects.create(tenant_id="corp-other", staff_id=alice.staff_id)
    call_command("erase_user", alice.staff_id, "--yes", stdout=io.StringIO())
    assert not UserProfile.objects.filter(staff_id=alice.staff_id).exists()
    assert UserProfile.objects.filter(staff_id=bob.staff_id).exists()


def test_export_and_erasure_refuse_while_a_store_is_missing_and_erase_nothing(people, personal_data_stores):
    from webapp.actions.personal_data import MEDIA, MissingStore

    personal_data_stores.unregister(MEDIA)
    with pytest.raises(MissingStore, match="media"):
        export(alice)
    with pytest.raises(MissingStore, match="media"):
        call_command("erase_user", alice.staff_id, "--tenant", T, "--yes", stdout=io.StringIO())
    assert UserProfile.objects.filter(staff_id=alice.staff_id).exists()
    assert session.export_user(T, alice.user_id)  # Redis untouched too: nothing was half-erased
    assert not AuditLog.objects.filter(action__in=("user.export", "user.erase")).exists()


class Notes:
    """A store some other process might own: one list of notes per tenant and user."""

    name = "notes.kept"

    def __init__(self) -> None:
        self.rows = {(T, alice.user_id): [{"note": "alice's note"}], (T, bob.user_id): [{"note": "bob's note"}]}

    def export_user(self, tenant_id: str, user_id: str) -> list[dict]:
        return list(self.rows.get((tenant_id, user_id), []))

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        return len(self.rows.pop((tenant_id, user_id), []))


def test_a_registered_store_is_exported_and_erased_with_the_rest(people, personal_data_stores):
    notes = Notes()
    personal_data_stores.register(notes)
    try:
        assert export(alice)["notes"]["kept"] == [{"note": "alice's note"}]
        out = io.StringIO()
        call_command("erase_user", alice.staff_id, "--tenant", T, "--yes", stdout=out)
        assert json.loads(out.getvalue())["notes.kept"] == 1
        assert notes.rows == {(T, bob.user_id): [{"note": "bob's note"}]}
    finally:
        personal_data_stores.unregister(notes.name)


def test_the_registry_takes_only_stores_with_usable_names():
    from webapp.actions.personal_data import Registry

    registry = Registry(expected=("notes.kept",))
    with pytest.raises(TypeError):
        registry.register(object())  # type: ignore[arg-type]
    for bad in ("postgresql.profiles", "user_id", "notes.", ""):
        clash = Notes()
        clash.name = bad
        with pytest.raises(ValueError):
            registry.register(clash)
    assert registry.missing() == ["notes.kept"]
    registry.register(Notes())
    for nested in ("notes", "notes.kept.old"):
        clash = Notes()
        clash.name = nested
        with pytest.raises(ValueError, match="nest"):
            registry.register(clash)
    assert [s.name for s in registry.stores()] == ["notes.kept"] and registry.missing() == []


def test_the_subject_reference_is_keyed_not_a_plain_hash(resources):
    import hashlib

    resources.set(AUDIT_HMAC_KEY="k" * 40)
    ref = subject_ref(T, alice.staff_id)
    assert ref != hashlib.sha256(f"{T}\x1f{alice.staff_id}".encode()).hexdigest()[:32]  # not guessable
    assert ref == subject_ref(T, alice.staff_id)  # stable under one key
    resources.set(AUDIT_HMAC_KEY="z" * 40)
    assert subject_ref(T, alice.staff_id) != ref


def test_audit_rows_hold_personal_data_and_secrets_only_masked():
    from webapp.actions.audit import record_audit, verify_chain
    from webapp.models.audit import AuditAction

    row = record_audit(actor="ops", action=AuditAction.PROFILE_UPDATE, target_type="profile", target_id="1",
                       before={"name": "王小明", "note": "手机 13812345678"},
                       after={"note": ["a@example.com", "Bearer abcdef0123456789"]})
    row.refresh_from_db()
    assert row.before == {"name": "王小明", "note": "手机 [PHONE]"}
    assert row.after == {"note": ["[EMAIL]", "Bearer ***"]}
    assert verify_chain().ok
