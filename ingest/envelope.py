"""Envelope: one inbound push as JSON primitives (the wire contract between ingest and workers)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.protocol import TOPIC_BOT_MESSAGE, Frame, FrameError


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
    def from_dict(cls, data: dict[str, Any]) -> "Envelope":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown envelope fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Envelope":
        return cls.from_dict(json.loads(text))


def envelope_from_frame(frame: Frame, tenant_id: str, received_at: float | None = None) -> Envelope:
    """Turn a CALLBACK/EVENT frame into an Envelope; raises FrameError if the data is unusable."""
    data = frame.data_json()
    if not isinstance(data, dict):
        raise FrameError(f"data of frame {frame.message_id!r} is not a JSON object")
    received = time.time() if received_at is None else received_at
    if frame.topic == TOPIC_BOT_MESSAGE:
        msg_id = str(data.get("msgId") or "")
        if not msg_id:
            raise FrameError(f"robot message in frame {frame.message_id!r} has no msgId")
        return robot_envelope(data, frame.message_id, tenant_id, received, frame.topic, frame.type)
    # Card callbacks and events have no msgId; the push id is stable across re-pushes.
    return Envelope(
        msg_id=str(data.get("eventId") or frame.headers.get("eventId") or frame.message_id),
        message_id=frame.message_id,
        topic=frame.topic,
        frame_type=frame.type,
        tenant_id=str(data.get("corpId") or frame.headers.get("eventCorpId") or tenant_id),
        conversation_id=str(data.get("spaceId") or ""),
        conversation_type=str(data.get("spaceType") or ""),
        sender_staff_id=str(data.get("userId") or ""),
        msgtype=str(data.get("type") or frame.headers.get("eventType") or ""),
        payload=data,
        received_at=received,
    )


def robot_envelope(
    data: dict[str, Any],
    message_id: str,
    tenant_id: str,
    received_at: float,
    topic: str = TOPIC_BOT_MESSAGE,
    frame_type: str = "CALLBACK",
) -> Envelope:
    """The Envelope of a robot message's decoded `data` (shared by the listener and test factories)."""
    return Envelope(
        msg_id=str(data.get("msgId") or ""),
        message_id=message_id,
        topic=topic,
        frame_type=frame_type,
        tenant_id=str(data.get("chatbotCorpId") or tenant_id),
        conversation_id=str(data.get("conversationId") or ""),
        conversation_type=str(data.get("conversationType") or ""),
        sender_id=str(data.get("senderId") or ""),
        sender_staff_id=str(data.get("senderStaffId") or ""),
        sender_nick=str(data.get("senderNick") or ""),
        msgtype=str(data.get("msgtype") or ""),
        payload=data,
        received_at=received_at,
    )
