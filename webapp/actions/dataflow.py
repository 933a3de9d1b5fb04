"""The pipeline's audit rows: one data-flow record per answered message, one exception record per failure."""

from __future__ import annotations

import hashlib
import traceback
from pathlib import Path
from typing import Any

from webapp.actions.audit import record_audit
from webapp.models.audit import AuditAction, AuditLog

# What a payload's `record` carries for the data-flow row (set in run_skill), beside the row fields.
FLOW_FIELDS = frozenset({"recipients", "personal_data"})
# Frames named in an exception row: where it happened, never the values (they may hold user text).
FRAMES_KEPT = 6


def split_flow(fields: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(MessageRecord fields, data-flow fields) of a payload's record."""
    return ({k: v for k, v in fields.items() if k not in FLOW_FIELDS},
            {k: v for k, v in fields.items() if k in FLOW_FIELDS})


def do_record_data_flow(msg_id: str, *, status: str, flow: dict[str, Any], channel: str = "",
                        skill: str = "", intent: str = "", tenant_id: str = "") -> AuditLog | None:
    """Which external services saw this message's text, which personal-data classes it carried,
    which skill answered and on which channel; once per message (a redelivered deliver adds none).
    Call it in the transaction that records the message's final status."""
    if AuditLog.objects.filter(action=AuditAction.MESSAGE_DATA_FLOW.value, target_id=msg_id[:256]).exists():
        return None
    return record_audit(
        actor="pipeline", action=AuditAction.MESSAGE_DATA_FLOW, tenant_id=tenant_id,
        target_type="message", target_id=msg_id,
        detail={"skill": skill, "intent": intent, "status": status, "channel": channel,
                "recipients": sorted({str(r) for r in flow.get("recipients") or ()}),
                "personal_data": sorted({str(c) for c in flow.get("personal_data") or ()})},
    )


def exception_detail(exc: BaseException) -> dict[str, Any]:
    """Type, a digest of the stack (the same failure at the same place hashes alike) and the last
    frames as file:line in function. The message is left out: it may quote the user's text."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = [f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames]
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    digest = hashlib.sha256("\n".join([kind, *where]).encode()).hexdigest()
    return {"type": kind, "stack_digest": digest, "frames": where[-FRAMES_KEPT:]}


def do_record_exception(msg_id: str, stage: str, exc: BaseException | None, *, outcome: str = "",
                        reason: str = "") -> AuditLog:
    """One failure of one stage: msgId, stage, exception type, stack digest, what became of it."""
    detail: dict[str, Any] = {"stage": stage, "outcome": outcome}
    if exc is not None:
        detail.update(exception_detail(exc))
    else:  # a failure without a live exception (a reason the workers determined)
        detail.update({"type": reason.split(":", 1)[0][:120], "stack_digest": "", "frames": []})
    return record_audit(actor="pipeline", action=AuditAction.PIPELINE_EXCEPTION, target_type="message",
                        target_id=msg_id, detail=detail)
