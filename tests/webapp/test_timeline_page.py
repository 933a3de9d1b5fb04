"""The admin's timeline page: find a message by msgId, user, conversation or time, and see its whole life."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from webapp import timeline
from webapp.models import DeadLetter, MessageRecord, MessageStatus, RoutedTurn, UserProfile

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def stamps(**stages: tuple[float, float | None]) -> dict:
    t0 = T0.timestamp()
    return {name: {"first": t0 + a, "start": t0 + a, "tries": 1, "worker": "pipeline@h/7",
                   **({"end": t0 + b} if b is not None else {})} for name, (a, b) in stages.items()}


@pytest.fixture
def answered() -> MessageRecord:
    alice = UserProfile.objects.create(tenant_id="corp", staff_id="alice", nick="Alice 王")
    record = MessageRecord.objects.create(
        msg_id="msgAnswered==", tenant_id="corp", conversation_id="cidGroup==", conversation_type="2", user=alice,
        skill="llm_chat", intent="chat", status=MessageStatus.REPLIED, channel="card",
        received_at=at(0), acked_at=at(0.01), replied_at=at(2.0),
        timeline={"stages": {**stamps(preprocess=(0.03, 0.08), run_skill=(0.1, 1.9), postprocess=(1.92, 1.95),
                                      deliver=(1.96, None))},
                  "parts": 1, "llm": {"first_token_s": 0.41, "total_s": 1.62, "chunks": 30}, "outcome": "ok"})
    record.timeline["stages"]["run_skill"].update(tries=2, start=T0.timestamp() + 0.6)
    record.save()
    RoutedTurn.objects.create(msg_id=record.msg_id, tenant_id="corp", user_id="alice", text="hi",
                              predicted_intent="chat", confidence=0.93, skill="llm_chat", decision="routed",
                              router_version="20260301-1", router_stage=1, top=[["chat", 0.93], ["help", 0.04]])
    return record


def test_the_segments_add_up_to_the_end_to_end_time(answered):
    built = timeline.build(answered)
    assert [s.name for s in built.segments] == [
        "listener: durable, then ACK", "preprocess: queue", "preprocess: run", "run_skill: queue", "run_skill: run",
        "postprocess: queue", "postprocess: run", "deliver: queue", "deliver: run"]
    assert built.end_to_end == pytest.approx(2.0)
    assert built.total == pytest.approx(2.0) and built.coverage == pytest.approx(1.0)
    run = built.segments[4]
    assert run.seconds == pytest.approx(1.8) and "2 tries (the last began 0.500 s in)" in run.detail
    assert built.routing["stage"] == 1 and built.routing["decision"] == "routed"
    assert built.llm["first_token_s"] == 0.41 and built.parts == 1


def test_a_record_from_before_the_stamps_still_shows_coarse_segments():
    record = MessageRecord.objects.create(
        msg_id="msgOld==", tenant_id="corp", status=MessageStatus.REPLIED, received_at=at(0),
        preprocessed_at=at(0.1), skill_done_at=at(1.0), postprocessed_at=at(1.1), replied_at=at(1.3))
    built = timeline.build(record)
    assert [s.name for s in built.segments] == ["preprocess (queue + run)", "run_skill (queue + run)",
                                                "postprocess (queue + run)", "deliver (queue + run)"]
    assert built.coverage == pytest.approx(1.0)


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", "o@example.com", None))
    return client


def test_finding_a_message_by_its_msg_id_opens_its_timeline(staff_client, answered):
    page = staff_client.get(reverse("admin:webapp_messagerecord_timeline_search"), {"q": "msgAnswered=="})
    html = page.content.decode()
    assert page.status_code == 200 and "Timeline of msgAnswered==" in html
    for shown in ("listener: durable, then ACK", "run_skill: run", "pipeline@h/7", "100 % of the end-to-end",
                  "2.000 s", "LLM first_token_s", "0.41", "20260301-1", "1 part(s) via card"):
        assert shown in html, shown


def test_search_by_user_conversation_and_time(staff_client, answered):
    MessageRecord.objects.create(msg_id="msgLater==", tenant_id="corp", conversation_id="cidGroup==",
                                 user=answered.user, received_at=at(3600), status=MessageStatus.PROCESSING)
    url = reverse("admin:webapp_messagerecord_timeline_search")
    by_user = staff_client.get(url, {"q": "alice"}).content.decode()
    assert "msgAnswered==" in by_user and "msgLater==" in by_user
    by_nick = staff_client.get(url, {"q": "Alice"}).content.decode()
    assert "msgLater==" in by_nick
    since = timezone.localtime(at(1800)).strftime("%Y-%m-%dT%H:%M")  # the form's fields are local time
    late = staff_client.get(url, {"q": "cidGroup==", "since": since}).content.decode()
    assert "msgLater==" in late and "msgAnswered==" not in late
    assert "No message matches" in staff_client.get(url, {"q": "nobody"}).content.decode()


def test_an_in_flight_message_says_when_its_times_are_written(staff_client):
    record = MessageRecord.objects.create(msg_id="msgBusy==", tenant_id="corp", received_at=at(0),
                                          status=MessageStatus.PROCESSING)
    html = staff_client.get(reverse("admin:webapp_messagerecord_timeline", args=[record.pk])).content.decode()
    assert "written when the message is answered or dead-lettered" in html


def test_dead_letters_and_replays_are_events_on_the_timeline(staff_client):
    record = MessageRecord.objects.create(
        msg_id="msgDead==", tenant_id="corp", received_at=at(0), status=MessageStatus.DEAD, error="boom",
        timeline={"stages": stamps(preprocess=(0.01, 0.02), run_skill=(0.03, None))})
    letter = DeadLetter.objects.create(msg_id="msgDead==", stage="run_skill", payload={}, error="TransientError: x")
    DeadLetter.objects.filter(pk=letter.pk).update(replayed_at=at(60), replay_count=2)
    html = staff_client.get(reverse("admin:webapp_messagerecord_timeline", args=[record.pk])).content.decode()
    assert f"dead-lettered at run_skill (#{letter.pk})" in html and "TransientError: x" in html
    assert "replayed from run_skill" in html and "2 replay(s)" in html and "status dead" in html


def test_the_records_list_links_each_message_to_its_timeline(staff_client, answered):
    html = staff_client.get(reverse("admin:webapp_messagerecord_changelist")).content.decode()
    assert reverse("admin:webapp_messagerecord_timeline", args=[answered.pk]) in html
    assert reverse("admin:webapp_messagerecord_timeline_search") in html


def test_the_page_needs_a_staff_login(client, answered):
    assert client.get(reverse("admin:webapp_messagerecord_timeline", args=[answered.pk])).status_code == 302
