"""Actions on message records: the durable claim, stage timestamps, final status."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from contract import keys
from webapp.actions.dataflow import FLOW_FIELDS, do_record_data_flow, split_flow
from webapp.models import DeliveryChannel as DeliveryChannel  # the workers' vocabulary, re-exported
from webapp.models import MessageRecord
from webapp.models import MessageStatus as MessageStatus


def epoch_to_datetime(value: float | None) -> dt.datetime | None:
    """Epoch seconds (or milliseconds, as DingTalk sends them) → aware datetime."""
    if not value:
        return None
    seconds = float(value)
    if seconds > 1e11:  # milliseconds
        seconds /= 1000.0
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def _statement_block() -> contextlib.AbstractContextManager[Any]:
    """What one statement that may fail needs: nothing in autocommit (a failed INSERT leaves no
    transaction behind, and BEGIN/COMMIT would cost two more round trips per message), a
    savepoint inside a caller's transaction (so the failure does not break it)."""
    if connection.in_atomic_block:
        return transaction.atomic()
    return contextlib.nullcontext()


def do_claim_record(msg_id: str, run_id: str, fields: dict[str, Any]) -> str | None:
    """Claim msg_id for run_id in PostgreSQL; returns None when claimed, else the owner's run id.

    The unique msg_id is the backstop of the Redis claim: if Redis lost the key, the row still
    knows which run owns the message. A row with an empty claimed_by (new, or reset for a replay)
    can be claimed by anyone; a row claimed by this same run (a redelivered task) stays claimed.
    """
    try:
        with _statement_block():
            MessageRecord.objects.create(
                msg_id=msg_id, claimed_by=run_id, status=MessageStatus.PROCESSING, **fields
            )
        return None
    except IntegrityError:
        pass
    updated = MessageRecord.objects.filter(msg_id=msg_id, claimed_by__in=("", run_id)).update(
        claimed_by=run_id, status=MessageStatus.PROCESSING, error="", **fields
    )
    if updated:
        return None
    owner = MessageRecord.objects.filter(msg_id=msg_id).values_list("claimed_by", flat=True).first()
    MessageRecord.objects.filter(msg_id=msg_id).update(duplicate_count=F("duplicate_count") + 1)
    return owner or ""


def do_count_duplicate(msg_id: str, owner: str, fields: dict[str, Any]) -> None:
    """A second delivery of msg_id was stopped; count it even if the owner's row is not
    written yet (the row is then created for the owner, who claims it as its own)."""
    if MessageRecord.objects.filter(msg_id=msg_id).update(
        duplicate_count=F("duplicate_count") + 1
    ):
        return
    try:
        with transaction.atomic():
            MessageRecord.objects.create(
                msg_id=msg_id, claimed_by=owner, duplicate_count=1,
                status=MessageStatus.PROCESSING, **fields,
            )
    except IntegrityError:
        MessageRecord.objects.filter(msg_id=msg_id).update(
            duplicate_count=F("duplicate_count") + 1
        )


def do_release_claim(msg_id: str) -> None:
    """Let the next pipeline run claim msg_id again (used before a replay from preprocess)."""
    MessageRecord.objects.filter(msg_id=msg_id).update(claimed_by="")


# What a pipeline payload's `record` may set on the row (stage timestamps as epoch seconds, the
# stages' stamps in `timeline`: workers.timeline), and what it carries for the message's data-flow
# audit row (FLOW_FIELDS: not columns).
RECORD_FIELDS = frozenset({"user_id", "skill", "intent", "preprocessed_at", "skill_done_at",
                           "postprocessed_at", "timeline"}) | FLOW_FIELDS
# Statuses that end a message's path: its data-flow row is written with them.
FINAL_STATUSES = frozenset({MessageStatus.REPLIED, MessageStatus.DELIVERY_UNKNOWN})


def record_fields(record: Any) -> dict[str, Any]:
    """The row fields a payload's `record` carries, unknown keys dropped (times stay epoch
    seconds: the do_mark_* actions convert them)."""
    if not isinstance(record, dict):
        return {}
    return {name: value for name, value in record.items() if name in RECORD_FIELDS}


def _row_values(fields: dict[str, Any]) -> dict[str, Any]:
    return {n: epoch_to_datetime(v) if n.endswith("_at") else v for n, v in fields.items()}


def _data_flow(msg_id: str, status: str, values: dict[str, Any], flow: dict[str, Any]) -> None:
    row = MessageRecord.objects.filter(msg_id=msg_id).values("tenant_id", "skill", "intent", "channel").first()
    known = {**(row or {}), **{k: v for k, v in values.items() if k in ("skill", "intent", "channel") and v}}
    do_record_data_flow(msg_id, status=str(status), flow=flow, channel=str(known.get("channel") or ""),
                        skill=str(known.get("skill") or ""), intent=str(known.get("intent") or ""),
                        tenant_id=str(known.get("tenant_id") or ""))


def do_mark_status(msg_id: str, status: str, error: str = "", **fields: Any) -> None:
    """Set the status of msg_id (and the error, timestamps given as epoch seconds); a final status
    writes the message's data-flow audit row in the same transaction."""
    columns, flow = split_flow(fields)
    values: dict[str, Any] = {"status": status, "error": error[:4000], **_row_values(columns)}
    if status not in FINAL_STATUSES:
        MessageRecord.objects.filter(msg_id=msg_id).update(**values)
        return
    with transaction.atomic():
        MessageRecord.objects.filter(msg_id=msg_id).update(**values)
        _data_flow(msg_id, status, values, flow)


def do_mark_replied_if_pending(msg_id: str, **fields: Any) -> None:
    """The reply went out but the record missed it (a crash between send and update)."""
    from django.utils import timezone

    columns, flow = split_flow(fields)
    values = _row_values(columns)
    with transaction.atomic():
        if MessageRecord.objects.filter(msg_id=msg_id, replied_at__isnull=True).update(
            status=MessageStatus.REPLIED, replied_at=timezone.now(), **values
        ):
            _data_flow(msg_id, MessageStatus.REPLIED, values, flow)


def reply_progress(msg_id: str) -> str:
    """The reply state the record holds (contract.keys' states; "sent" once the message is replied),
    for deliver when Redis lost its own."""
    row = MessageRecord.objects.filter(msg_id=msg_id).values("status", "reply_progress").first()
    if row is None:
        return ""
    if row["status"] == MessageStatus.REPLIED:
        return keys.REPLY_SENT
    return str(row["reply_progress"] or "")


def do_mark_reply_progress(msg_id: str, progress: str) -> None:
    """Record the reply's progress: "sending:<i>" right before part i leaves, "next:<i>" when it is
    known not sent. One UPDATE in autocommit (the workers' relaxed commit: only a PostgreSQL crash
    within its ~0.2 s WAL delay *and* a Redis that lost its reply state at once could resend)."""
    MessageRecord.objects.filter(msg_id=msg_id).update(reply_progress=progress)
