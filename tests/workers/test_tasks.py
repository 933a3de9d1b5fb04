"""The task wrapper gives every error kind its one exit: retry, dead letter, quiet stop, apology."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from celery import states

from conf.logs import LOG_FORMAT, MessageContextFilter, message_context
from contract.pipeline import STAGES, Stage
from skills import registry
from skills.api import AISkillPlugin, Reply, Turn
from testkit.personas import alice
from webapp.models import DeadLetter, MessageRecord, MessageStatus
from workers import phrases
from workers.errors import DuplicateMessage, PoisonMessage, TransientError
from workers.exits import RetryPolicy
from workers.tasks import pipeline_task, run_skill_task

pytestmark = pytest.mark.django_db

FLAKY = Stage("flaky", "dtbot.test.flaky", "dtbot.preprocess", 10)
calls: list[int] = []


@pipeline_task(FLAKY, load=dict)
def flaky_task(task, payload: dict) -> dict:
    calls.append(task.request.retries)
    kind = payload["raise"]
    if kind == "transient" or (kind == "transient_once" and task.request.retries == 0):
        raise TransientError("network blip")
    if kind == "poison":
        raise PoisonMessage("cannot parse")
    if kind == "duplicate":
        raise DuplicateMessage("already claimed")
    if kind == "bug":
        raise KeyError("oops")
    return {"msg_id": payload["msg_id"], "ok": True}


class Crashing(AISkillPlugin):
    name = "crashing"

    def execute(self, turn: Turn) -> Reply:
        raise ZeroDivisionError("bug in a skill")


@pytest.fixture(autouse=True)
def _reset_calls():
    calls.clear()


def test_the_pipeline_tasks_have_constant_names_queues_and_time_limits():
    from workers.celery import app

    for stage in STAGES:
        task = app.tasks[stage.task]
        assert app.amqp.router.route({}, stage.task)["queue"].name == stage.queue
        assert task.time_limit == stage.time_limit
        assert task.soft_time_limit < stage.time_limit
        assert task.acks_late


def test_a_stage_result_shows_in_events_as_its_msg_id_not_the_users_text():
    from celery.utils.saferepr import saferepr

    from workers.celery import app

    payload = {"msg_id": "msg-1", "run_id": "r", "turn": {"text": "my salary is 12345"}, "replies": []}
    for stage in STAGES:
        task = app.tasks[stage.task]
        assert task.ignore_result  # no result backend writes for chain stages
        # What Celery puts into the task-succeeded event and log line (as the worker does).
        shown = saferepr(payload, task.resultrepr_maxsize)
        assert "msg-1" in shown and "12345" not in shown


def test_a_transient_error_is_retried_then_succeeds(worker_settings):
    result = flaky_task.apply(args=({"msg_id": "m1", "raise": "transient_once"},))
    assert result.get() == {"msg_id": "m1", "ok": True}
    assert calls == [0, 1]


def test_retries_are_bounded_then_the_message_is_dead_lettered(worker_settings):
    MessageRecord.objects.create(msg_id="m2", tenant_id="t")
    result = flaky_task.apply(args=({"msg_id": "m2", "raise": "transient"},))
    assert result.state == states.IGNORED  # the chain stops here
    assert calls == list(range(worker_settings.task_max_retries + 1))
    letter = DeadLetter.objects.get(msg_id="m2")
    assert letter.stage == "flaky"
    assert "gave up after" in letter.error and "network blip" in letter.error
    assert letter.payload == {"msg_id": "m2", "raise": "transient"}
    assert MessageRecord.objects.get(msg_id="m2").status == MessageStatus.DEAD


def test_backoff_grows_with_jitter_and_stays_far_below_the_visibility_timeout(worker_settings):
    cap = worker_settings.task_retry_backoff_max_seconds
    assert cap <= 60 < worker_settings.redis_visibility_timeout_seconds
    retry_countdown = RetryPolicy.from_settings(worker_settings).countdown
    samples = [retry_countdown(0) for _ in range(50)]
    assert all(0.5 <= s <= 1.0 for s in samples) and len(set(samples)) > 1
    assert all(0 < retry_countdown(n) <= cap for n in range(30))
    assert retry_countdown(0, retry_after=20) >= 20
    assert retry_countdown(0, retry_after=600) == cap


def test_a_poison_message_goes_to_the_dead_letters_with_its_error(worker_settings):
    result = flaky_task.apply(args=({"msg_id": "m3", "raise": "poison"},))
    assert result.state == states.IGNORED
    assert calls == [0]
    assert DeadLetter.objects.get(msg_id="m3").error == "poison: cannot parse"


def test_a_duplicate_stops_the_chain_quietly(worker_settings):
    result = flaky_task.apply(args=({"msg_id": "m4", "raise": "duplicate"},))
    assert result.state == states.IGNORED
    assert not DeadLetter.objects.filter(msg_id="m4").exists()


def test_an_unexpected_error_outside_run_skill_is_logged_and_dead_lettered(worker_settings,
                                                                          caplog):
    with caplog.at_level(logging.ERROR, logger="workers.tasks"):
        result = flaky_task.apply(args=({"msg_id": "m5", "raise": "bug"},))
    assert result.state == states.IGNORED
    assert DeadLetter.objects.get(msg_id="m5").error == "KeyError: 'oops'"
    assert any(r.exc_info and "unexpected error" in r.getMessage() for r in caplog.records)


def test_it_apologises_when_the_skill_crashes(worker_settings, monkeypatch):
    monkeypatch.setitem(registry.SKILLS, "crashing", f"{__name__}:Crashing")
    turn = alice.turn("hello", msg_id="m6", skill="crashing")
    payload = {"msg_id": "m6", "turn": turn.to_dict(), "reply": None, "record": {}}
    try:
        out = run_skill_task.apply(args=(payload,)).get()
    finally:
        registry.skill_class.cache_clear()
    assert out["reply"]["text"] == phrases.APOLOGY_EN
    assert out["outcome"] == "crash"
    assert not DeadLetter.objects.filter(msg_id="m6").exists()


def test_every_log_line_about_a_message_carries_its_msg_id():
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(MessageContextFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger("test.msglog")
    logger.addHandler(handler)
    try:
        with message_context("msgXYZ==", "deliver"):
            logger.warning("inside")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (handler.format(r) for r in records)
    assert "msg_id=msgXYZ== stage=deliver" in inside
    assert "msg_id=- stage=-" in outside


def test_a_redis_outage_is_retried_like_a_transient_error(resources, worker_settings):
    from testkit.envelopes import envelope
    from testkit.services import free_port
    from workers.tasks import preprocess_task

    resources.set(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    env = envelope(text="hi")
    result = preprocess_task.apply(args=(env,))
    assert result.state == states.IGNORED
    letter = DeadLetter.objects.get(msg_id=env["msg_id"])
    assert letter.error.startswith(f"gave up after {worker_settings.task_max_retries} retries")
    assert "ConnectionError" in letter.error
    assert letter.stage == "preprocess" and letter.payload == env


def test_worker_commits_are_relaxed_but_dead_letters_are_durable(worker_settings):
    from django.db import connection, transaction

    from webapp.actions.deadletters import do_dead_letter
    from workers.resources import _relaxed_commits

    _relaxed_commits(None, connection)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"
        with transaction.atomic():
            do_dead_letter("m7", "deliver", {}, "boom")
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"


def test_a_payload_of_the_dict_era_still_runs_through_the_next_stage(worker_settings):
    # Queued (or parked as a dead letter) before payloads were typed: the dict preprocess returned.
    turn = Turn(msg_id="m8", tenant_id="t", conversation_id="c", conversation_type="1", user_id="u",
                text="hello", skill="echo")
    queued: dict[str, Any] = {"msg_id": "m8", "run_id": "run-8", "turn": turn.to_dict(),
              "delivery": {"conversation_id": "c", "conversation_type": "1"}, "reply": None, "notes": [],
              "order": {"tenant_id": "t", "conversation_id": "c", "seq": 1.0, "registered_at": 0.0},
              "record": {"user_id": None, "preprocessed_at": 1.0}}
    out = run_skill_task.apply(args=(queued,)).get()
    assert out["reply"]["text"] == "You said: hello" and out["outcome"] == "ok"
    assert out["delivery"] == queued["delivery"] and out["record"]["preprocessed_at"] == 1.0


def test_what_is_not_a_stage_payload_is_dead_lettered_as_it_came(worker_settings):
    result = run_skill_task.apply(args=({"msg_id": "m9", "turn": "garbled"},))
    assert result.state == states.IGNORED
    letter = DeadLetter.objects.get(msg_id="m9")
    assert letter.error.startswith("poison: ")
    assert (letter.payload["msg_id"], letter.payload["turn"]) == ("m9", "garbled")  # as it came (stage stamps aside)


def test_a_requeued_envelope_keeps_its_counters_out_of_the_envelope(worker_settings):
    from testkit.envelopes import envelope
    from workers.tasks import preprocess_task

    requeued = {**envelope(text="hi"), "requeued": {"preprocess": 1}, "throttled": 1}  # a throttled media fetch
    out = preprocess_task.apply(args=(requeued,)).get()
    assert out["msg_id"] == requeued["msg_id"] and out["turn"]["text"] == "hi"
