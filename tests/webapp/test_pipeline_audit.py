"""The pipeline in the audit log: one data-flow row per answered message (skill, who outside saw the text, its
personal-data classes, channel), one exception row per failure, and the audited events around messages."""

from __future__ import annotations

import pytest

from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from skills.docsearch.skill import DocSearchConfig, DocSearchSkill
from skills.llm_chat.skill import LLMChatConfig, LLMChatSkill
from skills.remote.skill import RemoteSkill, RemoteSkillConfig
from testkit.envelopes import envelope
from webapp.actions.deadletters import do_dead_letter, do_replay_dead_letter
from webapp.actions.records import MessageStatus, do_mark_replied_if_pending, do_mark_status, record_fields
from webapp.actions.reminder_store import DjangoReminderStore
from webapp.models import AuditLog, MessageRecord, Reminder
from webapp.models.audit import AuditAction
from workers.stages.postprocess import postprocess
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill

pytestmark = pytest.mark.django_db


class Crashing(AISkillPlugin):
    name = "crashing"

    def execute(self, turn: Turn) -> Reply:
        raise RuntimeError("boom: 13812345678")


def flow_row(msg_id: str) -> AuditLog:
    return AuditLog.objects.filter(action=AuditAction.MESSAGE_DATA_FLOW, target_id=msg_id).get()


def test_an_answered_message_leaves_one_data_flow_row(worker_settings):
    payload = postprocess(run_skill(preprocess(envelope(text="请回电 13812345678 或写信 alice@example.com"),
                                               run_id="r1")))
    fields = record_fields(payload.record)
    assert fields["recipients"] == [] and fields["personal_data"] == ["email", "mobile"]
    do_mark_status(payload.msg_id, MessageStatus.REPLIED, channel="webhook", **fields)
    do_mark_status(payload.msg_id, MessageStatus.REPLIED, channel="webhook", **fields)  # a redelivered deliver
    row = flow_row(payload.msg_id)
    assert row.detail == {"skill": "echo", "intent": payload.turn.intent, "status": "replied",
                          "channel": "webhook", "recipients": [], "personal_data": ["email", "mobile"]}
    assert "13812345678" not in str(row.content()) and "alice@example.com" not in str(row.content())
    assert MessageRecord.objects.get(msg_id=payload.msg_id).status == MessageStatus.REPLIED


def test_a_reply_recorded_late_also_leaves_its_row(worker_settings):
    payload = run_skill(preprocess(envelope(text="hello"), run_id="r1"))
    do_mark_replied_if_pending(payload.msg_id, **record_fields(payload.record))
    assert flow_row(payload.msg_id).detail["status"] == "replied"


def test_messages_not_yet_final_leave_no_row(worker_settings):
    payload = run_skill(preprocess(envelope(text="hello"), run_id="r1"))
    do_mark_status(payload.msg_id, MessageStatus.PROCESSING, **record_fields(payload.record))
    assert not AuditLog.objects.filter(action=AuditAction.MESSAGE_DATA_FLOW).exists()


def test_skills_name_the_services_that_receive_the_text_without_credentials():
    llm = LLMChatSkill(LLMChatConfig(base_url="http://user:pw@llm.example:8080/v1?key=x", api_key="sk-secret"))
    assert llm.recipients() == ("llm:http://llm.example:8080/v1",)
    assert LLMChatSkill(LLMChatConfig(base_url="")).recipients() == ()
    remote = RemoteSkill(RemoteSkillConfig(name="ithelp", url="https://it.example/skill?token=t", token="tok"))
    assert remote.recipients() == ("remote:https://it.example/skill",)
    docs = DocSearchSkill(DocSearchConfig(llm_base_url="https://llm.example/v1"))
    assert docs.recipients() == ("llm:https://llm.example/v1",)
    assert DocSearchSkill(DocSearchConfig(llm_base_url="")).recipients() == ()


def test_a_crashing_skill_leaves_an_exception_row_without_the_message(worker_settings, monkeypatch):
    from workers.tasks import run_skill_task

    monkeypatch.setitem(registry.SKILLS, "crashing", f"{__name__}:Crashing")
    turn = Turn(msg_id="m6", tenant_id="t", conversation_id="c", conversation_type="1", user_id="u",
                text="hello", skill="crashing")
    try:
        out = run_skill_task.apply(args=({"msg_id": "m6", "turn": turn.to_dict(), "reply": None, "record": {}},)).get()
    finally:
        registry.skill_class.cache_clear()
    assert out["outcome"] == "crash"
    row = AuditLog.objects.filter(action=AuditAction.PIPELINE_EXCEPTION).get()
    assert row.target_id == "m6" and row.detail["stage"] == "run_skill" and row.detail["outcome"] == "apology"
    assert row.detail["type"] == "builtins.RuntimeError" and len(row.detail["stack_digest"]) == 64
    assert any("in execute" in frame for frame in row.detail["frames"])
    assert "13812345678" not in str(row.content())


def test_a_dead_letter_leaves_its_exception_row_in_the_same_transaction(worker_settings):
    MessageRecord.objects.create(msg_id="m7", tenant_id="t", status=MessageStatus.PROCESSING)
    try:
        raise KeyError("missing")
    except KeyError:
        letter = do_dead_letter("m7", "deliver", {"msg_id": "m7", "record": {"recipients": ["llm:x"]}}, "KeyError")
    row = AuditLog.objects.filter(action=AuditAction.PIPELINE_EXCEPTION).get()
    assert row.detail["type"] == "builtins.KeyError" and row.detail["outcome"] == f"dead_letter #{letter.pk}"
    digest = row.detail["stack_digest"]
    same = AuditLog.objects.filter(action=AuditAction.PIPELINE_EXCEPTION, detail__stack_digest=digest)
    assert same.count() == 1


def test_a_replay_is_audited_with_who_replayed_it(worker_settings, broker_queues):
    letter = do_dead_letter("m8", "deliver", {"msg_id": "m8", "turn": {"msg_id": "m8"}}, "poison: x")
    do_replay_dead_letter(letter, actor="ops")
    row = AuditLog.objects.filter(action=AuditAction.DEAD_LETTER_REPLAY).get()
    assert row.actor == "ops" and row.detail == {"msg_id": "m8", "stage": "deliver", "replay_count": 1}


def test_a_user_cancelling_their_reminder_is_audited_by_pseudonym():
    import datetime as dt

    from django.utils import timezone

    soon = timezone.now() + dt.timedelta(hours=1)
    reminder = Reminder.objects.create(tenant_id="t", user_id="alice", title="dentist", event_at=soon, fire_at=soon,
                                       source_key="k1")
    store = DjangoReminderStore()
    assert not store.cancel("t", "mallory", reminder.pk)  # not hers: nothing happens, nothing audited
    assert store.cancel("t", "alice", reminder.pk)
    row = AuditLog.objects.filter(action=AuditAction.REMINDER_CANCEL_BY_USER).get()
    assert row.target_id == str(reminder.pk) and row.actor.startswith("user:")
    assert "alice" not in str(row.content()) and "dentist" not in str(row.content())
