"""The msgId claim: one pipeline run per message, in Redis with PostgreSQL as backstop."""

from __future__ import annotations

import pytest

from webapp.models import MessageRecord, MessageStatus
from workers.errors import DuplicateMessage
from workers.state import dedup

pytestmark = pytest.mark.django_db

FIELDS = {"tenant_id": "corp", "conversation_id": "cid", "conversation_type": "1",
          "msgtype": "text"}


def test_the_first_run_claims_the_message_and_records_it(redis_conn):
    dedup.claim("m1", "run-a", FIELDS)
    assert redis_conn.get(dedup.claim_key("m1")) == "run-a"
    record = MessageRecord.objects.get(msg_id="m1")
    assert record.claimed_by == "run-a"
    assert record.status == MessageStatus.PROCESSING


def test_a_second_delivery_is_a_duplicate(redis_conn):
    dedup.claim("m1", "run-a", FIELDS)
    with pytest.raises(DuplicateMessage):
        dedup.claim("m1", "run-b", FIELDS)
    assert MessageRecord.objects.get(msg_id="m1").duplicate_count == 1


def test_a_redelivered_copy_of_the_same_task_passes_its_own_claim(redis_conn):
    dedup.claim("m1", "run-a", FIELDS)
    dedup.claim("m1", "run-a", FIELDS)  # same task id after a worker crash
    assert MessageRecord.objects.get(msg_id="m1").claimed_by == "run-a"


def test_the_database_stops_a_duplicate_when_redis_lost_the_key(redis_conn):
    dedup.claim("m1", "run-a", FIELDS)
    redis_conn.delete(dedup.claim_key("m1"))  # Redis restarted without persistence
    with pytest.raises(DuplicateMessage, match="database"):
        dedup.claim("m1", "run-b", FIELDS)
    # The key goes back to the owner, so the owner's own redelivery still passes.
    assert redis_conn.get(dedup.claim_key("m1")) == "run-a"
    dedup.claim("m1", "run-a", FIELDS)


def test_a_released_message_can_be_claimed_by_a_new_run(redis_conn):
    dedup.claim("m1", "run-a", FIELDS)
    dedup.release("m1")
    dedup.claim("m1", "run-replay", FIELDS)
    assert MessageRecord.objects.get(msg_id="m1").claimed_by == "run-replay"
    with pytest.raises(DuplicateMessage):
        dedup.claim("m1", "run-a", FIELDS)


def test_the_claim_expires_after_the_dedup_ttl(redis_conn, worker_settings):
    dedup.claim("m1", "run-a", FIELDS)
    ttl = redis_conn.ttl(dedup.claim_key("m1"))
    assert 0 < ttl <= worker_settings.dedup_ttl_seconds


def test_a_duplicate_seen_before_the_owner_wrote_its_row_is_still_counted(redis_conn):
    # The owner won the Redis claim but has not inserted its row yet.
    redis_conn.set(dedup.claim_key("m1"), "run-a")
    with pytest.raises(DuplicateMessage):
        dedup.claim("m1", "run-b", FIELDS)
    dedup.claim("m1", "run-a", FIELDS)  # the owner goes on
    record = MessageRecord.objects.get(msg_id="m1")
    assert (record.claimed_by, record.duplicate_count) == ("run-a", 1)
