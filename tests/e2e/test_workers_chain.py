"""The whole chain through real Celery worker processes on a private RabbitMQ vhost."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from django.core.management import call_command

from testkit import processes, services
from testkit.envelopes import envelope_from_push
from testkit.personas import Persona, alice, bob, mallory
from tests.support.stack_fixtures import sandbox_worker_env
from webapp.models import DeadLetter, MessageRecord, MessageStatus
from workers.pipeline import build_chain

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PIPELINE_QUEUES = ("dtbot.preprocess", "dtbot.postprocess", "dtbot.deliver")


@pytest.fixture(scope="module")
def e2e_prefix():
    with services.redis_namespace() as prefix:
        yield prefix


@pytest.fixture(scope="module")
def workers(django_db_setup, celery_broker, dingtalk_sandbox, e2e_prefix):
    """The two roles of the Procfile: a threaded pipeline worker and a prefork skills worker."""
    env = sandbox_worker_env(celery_broker, dingtalk_sandbox, e2e_prefix,
                             TASK_MAX_RETRIES="2", TASK_RETRY_BACKOFF_SECONDS="0.1")
    pipeline = processes.start_worker(env, PIPELINE_QUEUES, pool="threads", concurrency=4)
    try:
        # One skills worker serving both skill queues (the Procfile splits them by pool).
        skills = processes.start_worker(env, ("dtbot.skills", "dtbot.skills.io"), pool="prefork", concurrency=2)
    except Exception:
        processes.stop(pipeline)
        raise
    yield pipeline, skills
    processes.stop(skills)
    processes.stop(pipeline)


@pytest.fixture
def e2e(workers, sandbox_client, broker_queues, e2e_prefix, resources):
    """This process publishes to the workers' vhost and shares their Redis namespace."""
    resources.set(REDIS_KEY_PREFIX=e2e_prefix)
    return workers


def inject(server, client, text: str, who: Persona = alice, **message) -> dict:
    return envelope_from_push(server, who.send(client, text, **message)["messageId"])


def settle(client, expected: int, timeout: float = 30.0) -> list[dict]:
    """Wait for `expected` replies, then a little longer so a duplicate would show up."""
    client.wait_for_replies(expected, timeout=timeout)
    time.sleep(1.0)
    return client.replies()


def test_each_message_gets_exactly_one_reply_through_real_workers(dingtalk_sandbox,
                                                                  sandbox_client, e2e):
    envelopes = [
        inject(dingtalk_sandbox, sandbox_client, text, conversation_type=ctype, who=who)
        for text, ctype, who in [
            ("hello", "1", alice), ("你好", "1", bob), ("help", "2", alice),
            ("in the group", "2", bob), ("   ", "1", mallory), ("again", "1", alice),
        ]
    ]
    for env in envelopes:
        build_chain(env).apply_async()
    replies = settle(sandbox_client, len(envelopes))
    assert Counter(r["msg_id"] for r in replies) == Counter(e["msg_id"] for e in envelopes)
    by_msg = {r["msg_id"]: r for r in replies}
    assert by_msg[envelopes[0]["msg_id"]]["text"] == "You said: hello"
    assert by_msg[envelopes[1]["msg_id"]]["text"] == "你说：你好"
    assert by_msg[envelopes[2]["msg_id"]]["msgtype"] == "markdown"
    assert by_msg[envelopes[3]["msg_id"]]["conversation_id"] == envelopes[3]["conversation_id"]
    assert "Please type something" in by_msg[envelopes[4]["msg_id"]]["text"]
    records = MessageRecord.objects.filter(msg_id__in=[e["msg_id"] for e in envelopes])
    assert {r.status for r in records} == {MessageStatus.REPLIED}
    assert all(r.replied_at and r.postprocessed_at and r.skill_done_at for r in records)


def test_the_same_envelope_published_twice_is_answered_once(dingtalk_sandbox, sandbox_client,
                                                            e2e):
    pipeline, skills = e2e
    skills_log_start = len(skills.log_text())
    env = inject(dingtalk_sandbox, sandbox_client, "only once")
    build_chain(env).apply_async()
    build_chain(dict(env, message_id="re-push")).apply_async()  # DingTalk pushed it again
    replies = settle(sandbox_client, 1)
    assert [r["msg_id"] for r in replies] == [env["msg_id"]]
    record = MessageRecord.objects.get(msg_id=env["msg_id"])
    assert record.duplicate_count == 1
    # The duplicate's chain stopped at preprocess: run_skill ran once for this message.
    log = pipeline.log_text()
    assert f"msg_id={env['msg_id']} stage=preprocess stopping quietly" in log
    received = [line for line in skills.log_text()[skills_log_start:].splitlines()
                if "dtbot.pipeline.run_skill[" in line and "received" in line]
    assert len(received) == 1


def test_an_expired_webhook_is_answered_through_the_openapi(dingtalk_sandbox, sandbox_client,
                                                            e2e):
    private = inject(dingtalk_sandbox, sandbox_client, "late one")
    group = inject(dingtalk_sandbox, sandbox_client, "late group", conversation_type="2", who=bob)
    sandbox_client.fault("expire_webhooks")
    build_chain(private).apply_async()
    build_chain(group).apply_async()
    replies = settle(sandbox_client, 2)
    assert sorted(r["via"] for r in replies) == ["batchSend", "groupSend"]


def test_a_message_dead_lettered_after_retries_is_answered_once_after_replay(
        dingtalk_sandbox, sandbox_client, e2e):
    first = inject(dingtalk_sandbox, sandbox_client, "first")
    second = inject(dingtalk_sandbox, sandbox_client, "second", who=bob)
    sandbox_client.fault("expire_webhooks")  # both go through the robot send API
    build_chain(first).apply_async()
    sandbox_client.wait_for_replies(1, timeout=30)
    sandbox_client.fault("fail_sends")  # an outage of DingTalk's send API: every send gets a 503
    build_chain(second).apply_async()
    deadline = time.monotonic() + 60
    while not DeadLetter.objects.filter(msg_id=second["msg_id"]).exists():
        assert time.monotonic() < deadline, "no dead letter"
        time.sleep(0.2)
    letter = DeadLetter.objects.get(msg_id=second["msg_id"])
    assert letter.stage == "deliver" and "gave up after 2 retries" in letter.error and "503" in letter.error
    record = MessageRecord.objects.get(msg_id=second["msg_id"])
    assert record.status == MessageStatus.DEAD and record.postprocessed_at is not None
    assert len(sandbox_client.replies()) == 1  # nothing of the second went out

    sandbox_client.fault("heal_sends")  # the outage is over
    call_command("replay_dead_letters", "--all")
    replies = settle(sandbox_client, 2)
    assert Counter(r["msg_id"] or r["user_ids"][0] for r in replies) == Counter(
        {alice.staff_id: 1, bob.staff_id: 1})
    assert MessageRecord.objects.get(msg_id=second["msg_id"]).status == MessageStatus.REPLIED
