"""Robot-message payloads (§4 of the protocol) built from a test's injection request, plus stable ids."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

GROUP_DEFAULT_KEY = "sandbox-group"
DEFAULT_GROUP_TITLE = "Sandbox group"


def _digest(*parts: str, size: int = 16) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()[:size]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def new_msg_id() -> str:
    """A business message id shaped like DingTalk's (`msg...==`)."""
    return "msg" + _b64(os.urandom(16))


def new_message_id() -> str:
    """A push id shaped like `212ca9d7_974_1898c159aa6_1783b`."""
    millis = int(time.time() * 1000)
    rnd = os.urandom(6).hex()
    return f"{rnd[:8]}_{int(rnd[8:], 16) % 1000}_{millis:x}_{os.urandom(3).hex()[:5]}"


def private_conversation_id(client_id: str, user_id: str) -> str:
    """Stable 1:1 conversation id between the robot and one user."""
    return "cid" + _b64(_digest("private", client_id, user_id))


def group_conversation_id(client_id: str, key: str = GROUP_DEFAULT_KEY) -> str:
    """Stable group conversation id for a group key."""
    return "cid" + _b64(_digest("group", client_id, key))


def sender_id(user_id: str) -> str:
    """Encrypted-looking sender id (`$:LWCP_v1:$...`), stable per user."""
    return "$:LWCP_v1:$" + _b64(_digest("sender", user_id, size=24))


def corp_id(client_id: str) -> str:
    return "ding" + _digest("corp", client_id, size=8).hex()


@dataclass
class Injection:
    """One robot message a test (or the chat page) asks the sandbox to deliver."""

    text: str = ""
    conversation_type: str = "1"
    conversation_id: str | None = None
    conversation_title: str | None = None
    user_id: str = "user1"
    nick: str | None = None
    msgtype: str = "text"
    content: dict[str, Any] | None = None
    msg_id: str | None = None
    webhook_ttl: float | None = None
    at_users: list[Any] = field(default_factory=list)
    sender_staff_id_missing: bool = False
    is_admin: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Any) -> Injection:
        """Validate a JSON request body; raises ValueError with the reason."""
        if not isinstance(body, dict):
            raise ValueError("message must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(body) - known
        if unknown:
            raise ValueError(f"unknown message fields: {sorted(unknown)}")
        # The fields as they will be (defaults overlaid with the request), checked before they are typed.
        raw: dict[str, Any] = {**vars(cls()), **body}
        if raw["conversation_type"] not in ("1", "2"):
            raise ValueError('conversation_type must be "1" (private) or "2" (group)')
        if not isinstance(raw["text"], str):
            raise ValueError("text must be a string")
        if not isinstance(raw["msgtype"], str) or not raw["msgtype"]:
            raise ValueError("msgtype must be a non-empty string")
        if raw["msgtype"] != "text" and not isinstance(raw["content"], dict):
            raise ValueError(f"msgtype {raw['msgtype']!r} needs a content object")
        if not isinstance(raw["user_id"], str) or not raw["user_id"]:
            raise ValueError("user_id must be a non-empty string")
        if not isinstance(raw["at_users"], list) or not isinstance(raw["extra"], dict):
            raise ValueError("at_users must be a list and extra an object")
        if raw["webhook_ttl"] is not None and not isinstance(raw["webhook_ttl"], (int, float)):
            raise ValueError("webhook_ttl must be a number of seconds")
        return cls(**body)

    def resolve_conversation_id(self, client_id: str) -> str:
        if self.conversation_id:
            return self.conversation_id
        if self.conversation_type == "1":
            return private_conversation_id(client_id, self.user_id)
        return group_conversation_id(client_id)


def robot_message(
    inj: Injection,
    *,
    client_id: str,
    msg_id: str,
    conversation_id: str,
    session_webhook: str,
    webhook_expires_ms: int,
    created_ms: int,
) -> dict[str, Any]:
    """The `data` object of a `/v1.0/im/bot/messages/get` push, with every field of §4."""
    robot_user_id = sender_id("robot:" + client_id)
    corp = corp_id(client_id)
    is_group = inj.conversation_type == "2"
    at_users: list[dict[str, str]] = []
    if is_group:
        at_users.append({"dingtalkId": robot_user_id})
    for user in inj.at_users:
        if isinstance(user, dict):
            at_users.append({str(k): str(v) for k, v in user.items()})
        else:
            at_users.append({"dingtalkId": sender_id(str(user)), "staffId": str(user)})
    data: dict[str, Any] = {
        "msgId": msg_id,
        "msgtype": inj.msgtype,
        "createAt": created_ms,
        "conversationType": inj.conversation_type,
        "conversationId": conversation_id,
        "senderId": sender_id(inj.user_id),
        "senderNick": inj.nick or inj.user_id,
        "senderCorpId": corp,
        "senderPlatform": "Web",
        "isAdmin": bool(inj.is_admin),
        "chatbotUserId": robot_user_id,
        "chatbotCorpId": corp,
        "robotCode": client_id,
        "isInAtList": True,
        "atUsers": at_users,
        "sessionWebhook": session_webhook,
        "sessionWebhookExpiredTime": webhook_expires_ms,
    }
    if is_group:
        data["conversationTitle"] = inj.conversation_title or DEFAULT_GROUP_TITLE
    if not inj.sender_staff_id_missing:
        data["senderStaffId"] = inj.user_id
    if inj.msgtype == "text":
        # In groups DingTalk strips the @mention and leaves the space that followed it.
        data["text"] = {"content": (" " + inj.text) if is_group else inj.text}
        if inj.content:
            data["text"].update(inj.content)
    else:
        data["content"] = inj.content
    data.update(inj.extra)
    return data
