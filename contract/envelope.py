"""Envelope: one inbound push as JSON primitives, the wire contract between the listener and the workers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

# The business topics the workers handle (protocol §5); the listener subscribes to both.
TOPIC_BOT_MESSAGE = "/v1.0/im/bot/messages/get"
TOPIC_CARD_CALLBACK = "/v1.0/card/instances/callback"


# In the payload of a push the listener kept without its content (over INGEST_MAX_FRAME_BYTES): its
# size in bytes. The workers answer it with a polite "too large" instead of reading it.
OVERSIZED_KEY = "dtbotOversized"


@dataclass(frozen=True)
class Envelope:
    """What the workers need to handle one push; `payload` is the decoded frame data."""

    msg_id: str
    message_id: str
    topic: str
    frame_type: str
    tenant_id: str
    conversation_id: str = ""
    conversation_type: str = ""
    sender_id: str = ""
    sender_staff_id: str = ""
    sender_nick: str = ""
    msgtype: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    received_at: float = 0.0
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Envelope:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown envelope fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        return cls.from_dict(json.loads(text))
