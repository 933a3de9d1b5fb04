"""Each stage stamps its start and end into the payload; deliver writes them in its one update, and the
segments add up to the message's end-to-end time."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.envelopes import envelope_from_push
from webapp import timeline as view
from webapp.models import DeadLetter, MessageRecord, MessageStatus
from workers import timeline

TURN = {"msg_id": "m1", "text": "hi"}


def test_an_envelope_is_left_alone_and_the_first_stage_is_stamped_on_its_result():
    env = {"msg_id": "m1", "topic": "t"}
    started = timeline.begin(env, "preprocess", 1, "w/1", now=10.0)
    assert env == {"msg_id": "m1", "topic": "t"} and started == 10.0
    out = timeline.end({"turn": TURN, "record": {"user_id": 3}}, "preprocess", started, 1, "w/1", now=10.5)
    assert out["record"] == {"user_id": 3, "timeline": {"stages": {
        "preprocess": {"first": 10.0, "start": 10.0, "tries": 1, "worker": "w/1", "end": 10.5}}}}


def test_a_retry_keeps_the_first_attempts_start_and_a_replay_starts_afresh():
    payload: dict[str, Any] = {"turn": TURN, "record": {}}
    timeline.begin(payload, "run_skill", 1, "w/1", now=20.0)
    timeline.begin(payload, "run_skill", 2, "w/2", now=23.0)  # the same task message, retried
    assert payload["record"]["timeline"]["stages"]["run_skill"] == {
        "first": 20.0, "start": 23.0, "tries": 2, "worker": "w/2"}
    timeline.begin(payload, "run_skill", 1, "w/3", now=90.0)  # a new task message: a replay
    assert payload["record"]["timeline"]["stages"]["run_skill"]["first"] == 90.0


def test_the_end_counts_the_reply_parts_and_leaves_non_payloads_alone():
    payload = {"turn": TURN, "record": {}, "replies": [{"text": "a"}, {"text": "b"}]}
    out = timeline.end(payload, "postprocess", 1.0, 1, "w", now=2.0)
    assert out["record"]["timeline"]["parts"] == 2 and "timeline" not in payload["record"]
    summary = {"msg_id": "m1", "result": "sent"}
    assert timeline.end(summary, "deliver", 1.0, 1, "w") is summary


def test_note_adds_facts_without_empty_ones():
    assert timeline.note({"skill": "x"}, llm={"first_token_s": 0.2}, outcome="") == {
        "skill": "x", "timeline": {"llm": {"first_token_s": 0.2}}}


@pytest.mark.django_db
def test_the_four_tasks_write_their_stamps_with_deliver_and_they_add_up(dingtalk_sandbox, sandbox_client,
                                                                        sandbox_settings):
    from workers.tasks import deliver_task, postprocess_task, preprocess_task, run_skill_task

    injected = sandbox_client.send_message("hello", user_id="alice")
    payload = envelope_from_push(dingtalk_sandbox, injected["messageId"])
    for task in (preprocess_task, run_skill_task, postprocess_task):
        payload = task.apply(args=(payload,)).get()
    assert deliver_task.apply(args=(payload,)).get()["result"] == "sent"

    record = MessageRecord.objects.get(msg_id=injected["msgId"])
    stages = record.timeline["stages"]
    assert set(stages) == {"preprocess", "run_skill", "postprocess", "deliver"}  # jsonb keeps no key order
    assert all(s["tries"] == 1 and s["worker"].endswith(f"/{__import__('os').getpid()}") for s in stages.values())
    assert "end" not in stages["deliver"]  # deliver ends with the reply: replied_at
    assert record.timeline["parts"] == 1
    built = view.build(record)
    assert [s.name for s in built.segments] == [
        "preprocess: queue", "preprocess: run", "run_skill: queue", "run_skill: run", "postprocess: queue",
        "postprocess: run", "deliver: queue", "deliver: run"]
    assert all(s.seconds >= 0 for s in built.segments)
    assert built.coverage == pytest.approx(1.0, abs=1e-6)


@pytest.mark.django_db
def test_a_dead_letter_keeps_the_stamps_up_to_the_stage_that_failed(worker_settings):
    from workers.tasks import postprocess_task

    payload = {"msg_id": "m-dead", "turn": {"msg_id": "m-dead", "tenant_id": "t", "conversation_id": "c",
                                            "conversation_type": "1", "user_id": "alice", "text": "x"},
               "reply": "not a reply", "notes": [], "record": {"timeline": {"stages": {
                   "preprocess": {"first": 1.0, "start": 1.0, "end": 1.2, "tries": 1, "worker": "w"},
                   "run_skill": {"first": 1.3, "start": 1.3, "end": 1.9, "tries": 1, "worker": "w"}}}}}
    MessageRecord.objects.create(msg_id="m-dead", tenant_id="t", status=MessageStatus.PROCESSING)
    postprocess_task.apply(args=(payload,))  # a bug in the stage: dead-lettered
    record = MessageRecord.objects.get(msg_id="m-dead")
    letter = DeadLetter.objects.get(msg_id="m-dead")
    assert record.status == MessageStatus.DEAD, letter.error
    assert set(record.timeline["stages"]) == {"preprocess", "run_skill", "postprocess"}
    assert "end" not in record.timeline["stages"]["postprocess"]
    built = view.build(record)
    assert any(e.what.startswith("dead-lettered at postprocess") for e in built.events)
    assert [s.name for s in built.segments][-1] == "postprocess: queue"
