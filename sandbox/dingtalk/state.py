"""Sandbox configuration and everything it records (pushes, ACKs, pings, replies, counters)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# API families a QPS limit can be set for (`configure(qps_limits={...})`).
QPS_FAMILIES = ("webhook", "robot_send", "card", "token", "files")
# Which un-ACKed pushes are pushed again: none; EVENT pushes only (DingTalk's Stream FAQ: robot
# messages are fire-and-forget); or every push (field reports: re-pushes after 16-60 s, sometimes).
REDELIVERY_MODES = ("off", "events", "all")


@dataclass
class SandboxConfig:
    """Runtime knobs; every one can be changed through POST /sandbox/config."""

    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    redelivery: str = "events"
    # An un-ACKed push (when its kind is redelivered) comes again after redeliver_after plus up to
    # redeliver_jitter seconds, chosen at random per push: 16-60 s by default, as reported.
    redeliver_after: float = 16.0
    redeliver_jitter: float = 44.0
    max_redeliveries: int = 3
    ping_interval: float = 30.0
    webhook_ttl: float = 5400.0
    ticket_ttl: float = 90.0
    token_ttl: float = 7200.0
    disconnect_grace: float = 10.0
    queue_when_disconnected: bool = True
    # ACK frames count this many seconds after they arrive (network delay): a re-push due earlier
    # goes out although the listener answered in time.
    ack_delay: float = 0.0
    qps_limits: dict[str, float] = field(default_factory=dict)

    # Fields a client may change at run time (credentials are fixed at start).
    MUTABLE = (
        "redelivery",
        "redeliver_after",
        "redeliver_jitter",
        "max_redeliveries",
        "ping_interval",
        "webhook_ttl",
        "ticket_ttl",
        "token_ttl",
        "disconnect_grace",
        "queue_when_disconnected",
        "ack_delay",
        "qps_limits",
    )

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; raises ValueError naming the first bad key or value."""
        types = {f.name: f.type for f in fields(self)}
        for key, value in changes.items():
            if key not in self.MUTABLE:
                raise ValueError(f"unknown or read-only config key {key!r}")
            if key == "qps_limits":
                if not isinstance(value, dict):
                    raise ValueError("qps_limits must be an object {family: limit}")
                for family, limit in value.items():
                    if family not in QPS_FAMILIES:
                        raise ValueError(f"unknown qps family {family!r}; known: {QPS_FAMILIES}")
                    if limit is not None and (not isinstance(limit, (int, float)) or limit <= 0):
                        raise ValueError(f"qps limit for {family!r} must be a positive number")
                self.qps_limits = {k: float(v) for k, v in value.items() if v is not None}
            elif key == "redelivery":
                if value not in REDELIVERY_MODES:
                    raise ValueError(f"redelivery must be one of {REDELIVERY_MODES}")
                self.redelivery = value
            elif types[key] == "bool":
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be a boolean")
                setattr(self, key, value)
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number")
                setattr(self, key, int(value) if types[key] == "int" else float(value))

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("client_secret")
        return data

    def redelivers(self, frame_type: str) -> bool:
        """Whether an un-ACKed push of this frame type is pushed again."""
        return self.redelivery == "all" or (self.redelivery == "events" and frame_type == "EVENT")


@dataclass
class Push:
    """One business message the gateway pushes (and re-pushes) until it is ACKed."""

    message_id: str
    type: str
    topic: str
    data: str
    msg_id: str | None
    injected_at: float
    count: int = 0
    acked: bool = False
    acked_at: float | None = None
    abandoned: bool = False
    connection_ids: list[str] = field(default_factory=list)
    pushed_at: list[float] = field(default_factory=list)
    extra_headers: dict[str, str] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "msgId": self.msg_id,
            "type": self.type,
            "topic": self.topic,
            "count": self.count,
            "acked": self.acked,
            "ackedAt": self.acked_at,
            "abandoned": self.abandoned,
            "connectionIds": list(self.connection_ids),
            "pushedAt": list(self.pushed_at),
            "injectedAt": self.injected_at,
        }


@dataclass
class Recorder:
    """What the sandbox saw; cleared by POST /sandbox/reset."""

    pushes: dict[str, Push] = field(default_factory=dict)
    acks: list[dict[str, Any]] = field(default_factory=list)
    pings: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: list[dict[str, Any]] = field(default_factory=list)
    bad_frames: list[dict[str, Any]] = field(default_factory=list)
    card_updates: list[dict[str, Any]] = field(default_factory=list)
    registrations: int = 0
    registration_failures: int = 0
    redelivered: int = 0
    dropped: int = 0
    token_fetches: int = 0
    throttled: int = 0
    next_reply_id: int = 1

    def add_reply(self, reply: dict[str, Any]) -> dict[str, Any]:
        reply = {"id": self.next_reply_id, "at": time.time(), **reply}
        self.next_reply_id += 1
        self.replies.append(reply)
        return reply

    def filter_replies(
        self,
        msg_id: str | None = None,
        conversation_id: str | None = None,
        since_id: int = 0,
        via: str | None = None,
    ) -> list[dict[str, Any]]:
        out = []
        for reply in self.replies:
            if reply["id"] <= since_id:
                continue
            if msg_id and reply.get("msg_id") != msg_id:
                continue
            if via and reply.get("via") != via:
                continue
            if conversation_id and conversation_id not in (
                reply.get("conversation_id"),
                *reply.get("conversation_ids", ()),
            ):
                continue
            out.append(reply)
        return out

    def counters(self) -> dict[str, int]:
        pushes = list(self.pushes.values())
        return {
            "registrations": self.registrations,
            "registration_failures": self.registration_failures,
            "injected": len(pushes),
            "pushed": sum(1 for p in pushes if p.count > 0),
            "queued": sum(1 for p in pushes if p.count == 0 and not p.acked and not p.abandoned),
            "redelivered": self.redelivered,
            "acked": sum(1 for p in pushes if p.acked),
            "unacked": sum(1 for p in pushes if not p.acked),
            "abandoned": sum(1 for p in pushes if p.abandoned),
            "dropped": self.dropped,
            "ack_frames": len(self.acks),
            "bad_frames": len(self.bad_frames),
            "token_fetches": self.token_fetches,
            "pings_sent": len(self.pings),
            "pongs_received": sum(1 for p in self.pings.values() if p["echoed"]),
            "replies": len(self.replies),
            "throttled": self.throttled,
        }
