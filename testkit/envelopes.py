"""Factories of DingTalk robot messages and Envelopes shaped like the protocol reference (§4)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from ingest.envelope import envelope_from_frame, robot_envelope
from ingest.protocol import parse_frame


def robot_message(
    text: str = "hello",
    *,
    msg_id: str | None = None,
    conversation_type: str = "1",
    conversation_id: str | None = None,
    staff_id: str | None = None,
    sender_id: str | None = None,
    nick: str | None = None,
    corp_id: str = "corp-test",
    robot_code: str = "robot-test",
    webhook: str = "https://oapi.dingtalk.com/robot/sendBySession?session=test",
    webhook_expires_in: float = 90 * 60,
    msgtype: str = "text",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The decoded `data` of a robot CALLBACK push; from alice unless the sender is given
    (a persona's own `robot_message` fills these in)."""
    if staff_id is None:
        from testkit.personas import ALICE  # personas build on this module

        staff_id, nick, sender_id = ALICE.staff_id, nick or ALICE.nick, sender_id or ALICE.sender_id
    nick = "" if nick is None else nick
    now_ms = int(time.time() * 1000)
    data: dict[str, Any] = {
        "msgId": msg_id or f"msg{uuid.uuid4().hex}==",
        "msgtype": msgtype,
        "createAt": now_ms,
        "conversationType": conversation_type,
        "conversationId": conversation_id or f"cid{uuid.uuid4().hex[:12]}==",
        "senderId": sender_id or f"$:LWCP_v1:${staff_id or uuid.uuid4().hex}",
        "senderStaffId": staff_id,
        "senderNick": nick,
        "senderCorpId": corp_id,
        "chatbotCorpId": corp_id,
        "chatbotUserId": "$:LWCP_v1:$bot",
        "robotCode": robot_code,
        "isAdmin": False,
        "sessionWebhook": webhook,
        "sessionWebhookExpiredTime": now_ms + int(webhook_expires_in * 1000),
    }
    if conversation_type == "2":
        data["conversationTitle"] = "Test group"
        data["isInAtList"] = True
    if msgtype == "text":
        data["text"] = {"content": text}
    if extra:
        data.update(extra)
    return data


def envelope(data: dict[str, Any] | None = None, **message: Any) -> dict[str, Any]:
    """An Envelope dict (what the listener publishes) around a robot message."""
    data = data if data is not None else robot_message(**message)
    return robot_envelope(
        data, f"push-{uuid.uuid4().hex[:12]}", "corp-test", time.time()
    ).to_dict()


def envelope_from_push(
    server: Any, message_id: str, tenant_id: str = "corp-test"
) -> dict[str, Any]:
    """The Envelope the listener would publish for a push of an in-process SandboxServer
    (read from its recorder, converted by the listener's own code)."""
    push = server.sandbox.recorder.pushes[message_id]
    frame = {
        "specVersion": "1.0",
        "type": push.type,
        "headers": {"topic": push.topic, "messageId": push.message_id,
                    "contentType": "application/json", "time": str(int(time.time() * 1000))},
        "data": push.data,
    }
    return envelope_from_frame(parse_frame(json.dumps(frame)), tenant_id).to_dict()


def card_callback(
    out_track_id: str,
    *,
    action_ids: list[str] | None = None,
    params: dict[str, Any] | None = None,
    user_id: str | None = None,
    corp_id: str = "corp-test",
    space_type: str = "IM_ROBOT",
    space_id: str = "",
) -> dict[str, Any]:
    """The decoded `data` of a card callback push (§5): `content` is a JSON *string*; alice clicks
    unless `user_id` (a staff id) says who."""
    if user_id is None:
        from testkit.personas import ALICE

        user_id = ALICE.staff_id
    private = {"actionIds": list(action_ids or []), "params": dict(params or {})}
    return {
        "outTrackId": out_track_id,
        "userId": user_id,
        "userIdType": 1,
        "corpId": corp_id,
        "spaceType": space_type,
        "spaceId": space_id or user_id,
        "type": "actionCallback",
        "content": json.dumps({"cardPrivateData": private}, ensure_ascii=False),
        "extension": "{}",
    }


def callback_envelope(data: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    """The Envelope the listener publishes for a card callback push (its own conversion code)."""
    frame = {
        "specVersion": "1.0",
        "type": "CALLBACK",
        "headers": {"topic": "/v1.0/card/instances/callback",
                    "messageId": message_id or f"push-{uuid.uuid4().hex[:12]}",
                    "contentType": "application/json", "time": str(int(time.time() * 1000))},
        "data": json.dumps(data, ensure_ascii=False),
    }
    return envelope_from_frame(parse_frame(json.dumps(frame)), str(data.get("corpId") or "corp-test")).to_dict()
