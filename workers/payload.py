"""StagePayload: what one pipeline stage hands the next — typed between tasks, JSON primitives on the wire.

The wire shape is the dict the stages passed before this type existed (same keys), so payloads
already queued or parked as dead letters load as they are; keys this version does not know are
kept in `extra` and written back, never dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from skills.api import Reply, Turn


@dataclass(frozen=True)
class Order:
    """A message's place in its conversation's line (workers.state.ordering)."""

    tenant_id: str
    conversation_id: str
    seq: float  # DingTalk's createAt, epoch ms
    registered_at: float = 0.0  # epoch s, when preprocess put it in line
    waiting_since: float = 0.0  # epoch s, when a stage first had to wait (0: never)

    def replace(self, **changes: Any) -> Order:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tenant_id": self.tenant_id, "conversation_id": self.conversation_id,
                                "seq": self.seq, "registered_at": self.registered_at}
        if self.waiting_since:
            data["waiting_since"] = self.waiting_since
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Order | None:
        """The order of a payload, or None when the message was never put in line (a replay)."""
        if not isinstance(data, Mapping) or not data.get("conversation_id"):
            return None
        return cls(
            tenant_id=str(data.get("tenant_id") or ""),
            conversation_id=str(data["conversation_id"]),
            seq=float(data.get("seq") or 0),
            registered_at=float(data.get("registered_at") or 0),
            waiting_since=float(data.get("waiting_since") or 0),
        )


# Re-queues that were not failures, counted in the task argument (a payload, or preprocess's envelope).
COUNTERS = ("requeued", "throttled")
# The keys StagePayload reads; anything else in a payload dict goes to `extra`.
_KNOWN = ("msg_id", "run_id", "turn", "delivery", "reply", "notes", "order", "record", "outcome",
          "replies", *COUNTERS)


@dataclass(frozen=True)
class StagePayload:
    """One message between preprocess and deliver.

    preprocess sets the turn, the delivery target, a preset `reply` (empty or unreadable input),
    `notes`, `order` and the first `record` times; run_skill the `reply` and `outcome`;
    postprocess the `replies` (DingTalk-sized parts). `record` collects the MessageRecord fields
    deliver writes in one go; `requeued` / `throttled` count re-queues that were not failures.
    """

    msg_id: str
    turn: Turn
    delivery: dict[str, Any] = field(default_factory=dict)  # where the reply goes (inbound.delivery_target)
    run_id: str = ""
    reply: Reply | None = None
    notes: tuple[str, ...] = ()
    order: Order | None = None
    record: dict[str, Any] = field(default_factory=dict)
    outcome: str = ""
    replies: tuple[Reply, ...] = ()
    requeued: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> StagePayload:
        return dataclasses.replace(self, **changes)

    def with_record(self, **fields: Any) -> StagePayload:
        """The payload with more MessageRecord fields (stage times, skill, intent)."""
        return self.replace(record={**self.record, **fields})

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives only: the task argument of the next stage (and a dead letter's payload)."""
        return {
            **self.extra,
            "msg_id": self.msg_id,
            "run_id": self.run_id,
            "turn": self.turn.to_dict(),
            "delivery": dict(self.delivery),
            "reply": self.reply.to_dict() if self.reply is not None else None,
            "notes": list(self.notes),
            "order": self.order.to_dict() if self.order is not None else None,
            "record": dict(self.record),
            "outcome": self.outcome,
            "replies": [part.to_dict() for part in self.replies],
            "requeued": dict(self.requeued),
            "throttled": self.throttled,
        }

    @classmethod
    def from_dict(cls, data: Any) -> StagePayload:
        """Read a payload dict (this version's, or an older one with fewer keys); ValueError when
        it is not a stage payload at all."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a stage payload is a JSON object, not {type(data).__name__}")
        turn, delivery = data.get("turn"), data.get("delivery") or {}
        if not isinstance(turn, Mapping) or not isinstance(delivery, Mapping):
            raise ValueError("a stage payload needs a turn object (and a delivery object, if any)")
        try:
            parsed_turn = Turn.from_dict(dict(turn))
            msg_id = str(data.get("msg_id") or parsed_turn.msg_id)
            if not msg_id:
                raise ValueError("a stage payload needs a msg_id")
            reply = data.get("reply")
            if reply is not None and not isinstance(reply, Mapping):
                raise ValueError(f"a stage payload's reply is an object, not {type(reply).__name__}")
            return cls(
                msg_id=msg_id,
                turn=parsed_turn,
                delivery=dict(delivery),
                run_id=str(data.get("run_id") or ""),
                reply=Reply.from_dict(dict(reply)) if reply else None,
                notes=tuple(str(n) for n in data.get("notes") or ()),
                order=Order.from_dict(data.get("order")),
                record=dict(data.get("record") or {}),
                outcome=str(data.get("outcome") or ""),
                replies=tuple(Reply.from_dict(dict(p)) for p in data.get("replies") or ()),
                requeued={str(k): int(v) for k, v in (data.get("requeued") or {}).items()},
                throttled=int(data.get("throttled") or 0),
                extra={k: v for k, v in data.items() if k not in _KNOWN},
            )
        except (TypeError, AttributeError) as exc:  # a field of the wrong shape
            raise ValueError(f"not a stage payload: {exc}") from exc
