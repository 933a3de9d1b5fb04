"""Frame, ACK and ping shapes of the DingTalk Stream protocol (see shared/dingtalk-stream-protocol.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.envelope import TOPIC_BOT_MESSAGE, TOPIC_CARD_CALLBACK
from ingest import fastjson

TOPIC_PING = "ping"
TOPIC_DISCONNECT = "disconnect"

TYPE_SYSTEM = "SYSTEM"
TYPE_EVENT = "EVENT"
TYPE_CALLBACK = "CALLBACK"

SUBSCRIPTIONS: tuple[dict[str, str], ...] = (
    {"type": TYPE_CALLBACK, "topic": TOPIC_BOT_MESSAGE},
    {"type": TYPE_CALLBACK, "topic": TOPIC_CARD_CALLBACK},
    {"type": TYPE_EVENT, "topic": "*"},
)

USER_AGENT = "dtbot-ingest-python/1.0"


class FrameError(ValueError):
    """A downstream frame that cannot be understood (bad JSON, missing messageId, ...)."""


@dataclass(frozen=True)
class Frame:
    """One downstream frame; `data` stays the raw string the server sent."""

    type: str
    headers: Mapping[str, str]
    data: str

    @property
    def topic(self) -> str:
        return self.headers.get("topic", "")

    @property
    def message_id(self) -> str:
        return self.headers.get("messageId", "")

    def data_json(self) -> Any:
        """Decode `data`; raises FrameError when it is not JSON."""
        try:
            return json.loads(self.data) if self.data else {}
        except (TypeError, ValueError) as exc:
            raise FrameError(f"data of frame {self.message_id!r} is not JSON: {exc}") from exc


def parse_frame(text: str | bytes) -> Frame:
    """Parse one text frame; raises FrameError with a reason a log line can carry."""
    try:
        obj = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise FrameError(f"frame is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise FrameError("frame is not a JSON object")
    headers = obj.get("headers")
    if not isinstance(headers, dict):
        raise FrameError("frame has no headers object")
    # Header values are strings on the wire; coerce defensively, ignore unknown ones.
    headers = {str(k): "" if v is None else str(v) for k, v in headers.items()}
    if not headers.get("messageId"):
        raise FrameError("frame has no headers.messageId")
    frame_type = obj.get("type")
    if frame_type not in (TYPE_SYSTEM, TYPE_EVENT, TYPE_CALLBACK):
        raise FrameError(f"frame {headers['messageId']!r} has unknown type {frame_type!r}")
    data = obj.get("data", "")
    if not isinstance(data, str):
        # The protocol says data is a string; accept an object but keep the contract.
        data = fastjson.dumps_text(data)
    return Frame(type=frame_type, headers=headers, data=data)


def response_frame(message_id: str, data: Any, code: int = 200, message: str = "OK") -> str:
    """Upstream response frame; `data` is serialized to a string as the protocol requires."""
    return fastjson.dumps_text(
        {
            "code": code,
            "headers": {"messageId": message_id, "contentType": "application/json"},
            "message": message,
            "data": fastjson.dumps_text(data),
        }
    )


def callback_ack(message_id: str, response: Any = None) -> str:
    """ACK for a CALLBACK push (robot message or card callback)."""
    return response_frame(message_id, {"response": response})


def event_ack(message_id: str, status: str = "SUCCESS", message: str = "") -> str:
    """ACK for an EVENT push: SUCCESS, or LATER to ask for a re-push."""
    return response_frame(message_id, {"status": status, "message": message})


def ack_for(frame: Frame, response: Any = None) -> str:
    """The right ACK frame for a durable CALLBACK or EVENT push."""
    if frame.type == TYPE_EVENT:
        return event_ack(frame.message_id)
    return callback_ack(frame.message_id, response)


def pong(frame: Frame) -> str:
    """Answer to a SYSTEM ping: echo the opaque data string as is."""
    try:
        data = json.loads(frame.data) if frame.data else {}
    except ValueError:
        data = {}
    return response_frame(frame.message_id, data)


def registration_body(client_id: str, client_secret: str, local_ip: str = "") -> dict[str, Any]:
    """Body of POST /v1.0/gateway/connections/open."""
    return {
        "clientId": client_id,
        "clientSecret": client_secret,
        "subscriptions": list(SUBSCRIPTIONS),
        "ua": USER_AGENT,
        "localIp": local_ip,
    }
