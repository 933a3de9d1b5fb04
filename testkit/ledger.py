"""Checks exactly-once delivery: which sent messages got no reply, two replies, or a misrouted one."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Each test message carries a unique token so replies sent without a msgId (OpenAPI fallback)
# can still be matched to the message that caused them.
TOKEN_RE = re.compile(r"\bt([0-9a-f]{12})\b")


def token() -> str:
    return "t" + uuid.uuid4().hex[:12]


@dataclass
class Sent:
    """One message injected into the sandbox."""

    msg_id: str
    conversation_id: str
    token: str
    sent_at: float


@dataclass
class Ledger:
    """Messages sent during a run and the replies seen; computes lost / duplicate / misrouted."""

    sent: dict[str, Sent] = field(default_factory=dict)
    by_token: dict[str, str] = field(default_factory=dict)

    def record(self, result: dict[str, str], tok: str) -> Sent:
        item = Sent(result["msgId"], result["conversationId"], tok, time.time())
        self.sent[item.msg_id] = item
        self.by_token[tok] = item.msg_id
        return item

    def attribute(self, reply: dict[str, Any]) -> str | None:
        """The msgId a reply answers: from its session webhook, else from the token in its text."""
        if reply.get("msg_id"):
            return str(reply["msg_id"])
        match = TOKEN_RE.search(str(reply.get("text", "")))
        return self.by_token.get("t" + match.group(1)) if match else None

    def check(self, replies: list[dict[str, Any]]) -> Verdict:
        counts: Counter[str] = Counter()
        misrouted: list[str] = []
        unknown = 0
        for reply in replies:
            msg_id = self.attribute(reply)
            if msg_id is None or msg_id not in self.sent:
                unknown += 1
                continue
            counts[msg_id] += 1
            if reply.get("conversation_id") and reply["conversation_id"] != self.sent[msg_id].conversation_id:
                misrouted.append(msg_id)
        lost = sorted(m for m in self.sent if counts[m] == 0)
        dups = sorted(m for m, c in counts.items() if c > 1)
        return Verdict(len(self.sent), sum(counts.values()), lost, dups, misrouted, unknown)


@dataclass(frozen=True)
class Verdict:
    """The outcome of a run: what a fault test asserts to be empty."""

    sent: int
    replies: int
    lost: list[str]
    duplicates: list[str]
    misrouted: list[str]
    unattributed: int

    @property
    def exactly_once(self) -> bool:
        return not (self.lost or self.duplicates or self.misrouted or self.unattributed)

    def summary(self) -> str:
        return (
            f"sent={self.sent} replies={self.replies} lost={len(self.lost)} "
            f"duplicates={len(self.duplicates)} misrouted={len(self.misrouted)} "
            f"unattributed={self.unattributed} (first lost: {self.lost[:5]}, first dup: {self.duplicates[:5]})"
        )
