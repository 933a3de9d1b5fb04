"""Actions on the dead-letter queue: store a failed message, mark it replayed, replay it."""

from __future__ import annotations

import logging
import sys
from typing import Any

import redis
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from conf.logs import message_context
from conf.settings import get_settings
from contract import keys
from contract.pipeline import ARGSREPR, PREPROCESS, STAGE_BY_NAME, Stage, chain_field
from webapp.actions.audit import record_audit
from webapp.actions.dataflow import do_record_exception, split_flow
from webapp.actions.records import do_release_claim, epoch_to_datetime, record_fields
from webapp.clients import key, publisher, redis_client
from webapp.models import DeadLetter, MessageRecord, MessageStatus
from webapp.models.audit import AuditAction

log = logging.getLogger(__name__)


def do_dead_letter(msg_id: str, stage: str, payload: dict[str, Any], error: str,
                   exc: BaseException | None = None) -> DeadLetter:
    """Keep the failed stage's input for replay and mark the message dead, in one transaction
    (with the stage timestamps the payload carried: deliver would have written them) with its
    exception audit row (`exc`, by default the exception being handled)."""
    exc = exc if exc is not None else sys.exc_info()[1]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Durable even where the connection relaxed commits (the workers do).
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO ON")
        letter = DeadLetter.objects.create(
            msg_id=msg_id, stage=stage, payload=payload, error=error[:8000]
        )
        columns, _ = split_flow(record_fields(payload.get("record")))
        stages = {n: epoch_to_datetime(v) if n.endswith("_at") else v for n, v in columns.items()}
        MessageRecord.objects.filter(msg_id=msg_id).update(
            status=MessageStatus.DEAD, error=error[:4000], **stages
        )
        do_record_exception(msg_id, stage, exc, outcome=f"dead_letter #{letter.pk}", reason=error)
    return letter


def do_mark_replayed(letter: DeadLetter) -> None:
    """Count one replay of the letter; the message is processing again."""
    now = timezone.now()
    with transaction.atomic():
        DeadLetter.objects.filter(pk=letter.pk).update(
            replayed_at=now, replay_count=F("replay_count") + 1
        )
        MessageRecord.objects.filter(msg_id=letter.msg_id).update(
            status=MessageStatus.PROCESSING, error=""
        )
    letter.refresh_from_db()


def describe(letter: DeadLetter) -> str:
    return f"#{letter.pk} {letter.msg_id} from {letter.stage} (replayed {letter.replay_count}x)"


def do_replay_dead_letter(letter: DeadLetter, actor: str = "system") -> None:
    """Re-run the pipeline from the letter's failed stage, answering at most once.

    First the workers' Redis state that would stop the replay is cleared (key names from
    contract.keys): from preprocess the replay is a new pipeline run, so the old claim is released;
    an in-flight reply mark left by a crash becomes "not sent" (replaying is the operator's
    decision), while a reply already sent stays sent (the replay then stops at deliver).
    """
    stage = STAGE_BY_NAME.get(letter.stage)
    if stage is None:
        raise ValueError(f"dead letter #{letter.pk} has unknown stage {letter.stage!r}")
    with message_context(letter.msg_id, "replay"):
        if stage == PREPROCESS:
            redis_client().delete(key(keys.claim(letter.msg_id)))
            do_release_claim(letter.msg_id)
        _reset_reply_progress(letter.msg_id)
        if _reset_reply_state(letter.msg_id) == keys.REPLY_SENT:
            log.warning("this message was already answered; the replay will not answer again")
        # Marked first, published inside the same transaction: the replayed run's own status
        # updates wait on this row's lock until the commit, so they always land after it.
        # If publishing fails, the mark rolls back.
        with transaction.atomic():
            do_mark_replayed(letter)
            record_audit(actor=actor, action=AuditAction.DEAD_LETTER_REPLAY, target_type="dead_letter",
                         target_id=str(letter.pk), detail={"msg_id": letter.msg_id, "stage": letter.stage,
                                                           "replay_count": letter.replay_count})
            _publish_from(stage, letter.payload)
        log.info("replayed %s", describe(letter))


def _reset_reply_progress(msg_id: str) -> None:
    """The record's copy of the reply state (deliver's fallback without Redis) gets the same change."""
    progress = MessageRecord.objects.filter(msg_id=msg_id).values_list("reply_progress", flat=True).first()
    new = keys.state_for_replay(progress or "")
    if new is not None:
        MessageRecord.objects.filter(msg_id=msg_id, reply_progress=progress).update(reply_progress=new)


def _reset_reply_state(msg_id: str) -> str:
    """Apply the replay's reply-state change atomically (WATCH/MULTI); returns the previous state."""
    name = key(keys.reply(msg_id))
    ttl = get_settings().dedup_ttl_seconds
    previous = ""

    def reset(pipe: redis.client.Pipeline) -> None:  # rerun by redis-py if the key changes meanwhile
        nonlocal previous
        previous = str(pipe.get(name) or "")
        new = keys.state_for_replay(previous)
        pipe.multi()
        if new is not None:
            pipe.set(name, new, ex=ttl)

    redis_client().transaction(reset, name)
    return previous


def _publish_from(stage: Stage, payload: dict[str, Any]) -> None:
    """The task message of `stage` carrying the stages after it in its `chain` field: what the
    workers' own chain publishes (tests/webapp/test_replay.py compares the two)."""
    publisher().send_task(
        stage.task, args=(payload,), queue=stage.queue, chain=chain_field(stage.name) or None,
        argsrepr=ARGSREPR, kwargsrepr="{}",
        # Unroutable → an error (the replay mark rolls back), never a confirmed, dropped replay.
        mandatory=True, confirm_timeout=10.0,
    )
