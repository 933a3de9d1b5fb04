"""Dead letters replay from their failed stage (the webapp publishes what the workers' chain would), with the
dedup/reply state cleared as needed."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from contract.pipeline import STAGES
from testkit.envelopes import envelope
from webapp.actions.deadletters import do_dead_letter
from webapp.actions.deadletters import do_replay_dead_letter as replay
from webapp.models import DeadLetter, MessageRecord, MessageStatus
from workers.pipeline import chain_from
from workers.stages.postprocess import postprocess
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill
from workers.state import dedup, reply_state

pytestmark = pytest.mark.django_db


def dead_at(stage: str, worker_settings, text: str = "hello") -> DeadLetter:
    env = envelope(text=text)
    if stage == "preprocess":
        return do_dead_letter(env["msg_id"], stage, env, "poison: test")
    payload = preprocess(env, run_id="run-original")
    if stage in ("postprocess", "deliver"):
        payload = run_skill(payload)
    if stage == "deliver":
        payload = postprocess(payload)
    return do_dead_letter(env["msg_id"], stage, payload.to_dict(), "poison: test")


def test_a_dead_letter_marks_the_message_dead(worker_settings):
    letter = dead_at("deliver", worker_settings)
    record = MessageRecord.objects.get(msg_id=letter.msg_id)
    assert record.status == MessageStatus.DEAD
    assert letter.pending
    # The stage stamps the payload carried are written with it (deliver never got to them).
    assert record.preprocessed_at and record.skill_done_at and record.postprocessed_at
    assert record.preprocessed_at <= record.skill_done_at <= record.postprocessed_at
    assert record.skill == "echo" and record.user is not None


def test_replay_publishes_the_rest_of_the_chain_from_the_failed_stage(
        worker_settings, broker_queues):
    letter = dead_at("postprocess", worker_settings)
    replay(letter)
    [message] = broker_queues()
    assert message["queue"] == "dtbot.postprocess"
    assert message["task"] == "dtbot.pipeline.postprocess"
    assert message["args"] == [letter.payload]
    assert [s["task"] for s in message["chain"]] == ["dtbot.pipeline.deliver"]
    letter.refresh_from_db()
    assert letter.replay_count == 1 and letter.replayed_at is not None
    assert MessageRecord.objects.get(msg_id=letter.msg_id).status == MessageStatus.PROCESSING


def test_replay_from_preprocess_releases_the_claim(worker_settings, broker_queues, redis_conn):
    letter = dead_at("preprocess", worker_settings)
    dedup.claim(letter.msg_id, "run-original", {"tenant_id": "t"})
    replay(letter)
    assert redis_conn.get(dedup.claim_key(letter.msg_id)) is None
    assert MessageRecord.objects.get(msg_id=letter.msg_id).claimed_by == ""
    [message] = broker_queues()
    # The replayed preprocess is a new run: it can claim the message.
    dedup.claim(letter.msg_id, "run-replay", {"tenant_id": "t"})
    assert message["task"] == "dtbot.pipeline.preprocess"


def test_replay_turns_an_unknown_send_into_unsent_but_never_resends_a_sent_reply(
        worker_settings, broker_queues):
    crashed = dead_at("deliver", worker_settings)
    reply_state.swap(crashed.msg_id, "", reply_state.sending(0))
    replay(crashed)
    assert reply_state.get(crashed.msg_id) == "next:0"
    answered = dead_at("deliver", worker_settings)
    reply_state.swap(answered.msg_id, "", reply_state.SENT)
    replay(answered)
    assert reply_state.get(answered.msg_id) == reply_state.SENT


def test_the_command_needs_ids_or_all(worker_settings):
    with pytest.raises(CommandError, match="--id"):
        call_command("replay_dead_letters")
    with pytest.raises(CommandError, match="no dead letter"):
        call_command("replay_dead_letters", "--id", "999999")


def test_the_command_dry_run_lists_without_replaying(worker_settings, broker_queues, capsys):
    letter = dead_at("deliver", worker_settings)
    call_command("replay_dead_letters", "--all", "--dry-run")
    assert f"would replay #{letter.pk}" in capsys.readouterr().out
    assert broker_queues() == []
    letter.refresh_from_db()
    assert letter.pending


def test_the_command_replays_by_id_and_all_pending(worker_settings, broker_queues, capsys):
    first = dead_at("deliver", worker_settings, "one")
    second = dead_at("run_skill", worker_settings, "two")
    call_command("replay_dead_letters", "--id", str(first.pk))
    assert [m["task"] for m in broker_queues()] == ["dtbot.pipeline.deliver"]
    call_command("replay_dead_letters", "--all")  # only the pending one is left
    assert [m["task"] for m in broker_queues()] == ["dtbot.pipeline.run_skill"]
    assert DeadLetter.objects.filter(replayed_at__isnull=True).count() == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    second.refresh_from_db()
    assert second.replay_count == 1


@pytest.mark.parametrize("stage", [s.name for s in STAGES])
def test_the_replayed_message_is_what_the_workers_chain_publishes(stage, worker_settings, broker_queues):
    letter = do_dead_letter(f"msg-{stage}", stage, {"msg_id": f"msg-{stage}", "turn": {"text": "hi"}}, "boom")
    replay(letter)
    chain_from(stage, letter.payload).apply_async()
    replayed, workers_own = broker_queues()
    # Celery's chain pre-assigns ids to the later stages; without them each gets one when published.
    for sig in workers_own["chain"] or []:
        del sig["options"]["task_id"], sig["options"]["reply_to"]
    assert replayed == workers_own
    assert replayed["task"] == f"dtbot.pipeline.{stage}"


def test_a_letter_from_an_unknown_stage_is_refused_and_nothing_is_published(worker_settings, broker_queues):
    letter = do_dead_letter("msg-x", "translate", {"msg_id": "msg-x"}, "boom")
    with pytest.raises(ValueError, match="unknown stage 'translate'"):
        replay(letter)
    assert broker_queues() == []
    letter.refresh_from_db()
    assert letter.pending


def test_a_broker_outage_fails_the_replay_and_rolls_its_mark_back(resources, worker_settings):
    from kombu.exceptions import OperationalError

    from testkit.services import free_port

    letter = dead_at("deliver", worker_settings)
    resources.set(CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    with pytest.raises(OperationalError):
        replay(letter)
    letter.refresh_from_db()
    assert letter.pending and letter.replay_count == 0  # it can be replayed again once the broker is back
    assert MessageRecord.objects.get(msg_id=letter.msg_id).status == MessageStatus.DEAD
