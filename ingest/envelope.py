"""A Stream frame → Envelope (contract.envelope), for the listener and the test factories."""

from __future__ import annotations

import time
from typing import Any

from contract.envelope import TOPIC_BOT_MESSAGE, Envelope
from ingest.protocol import Frame, FrameError

__all__ = ["envelope_from_frame", "robot_envelope"]


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
