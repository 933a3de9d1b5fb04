"""Personas for skill tests: alice (employee, Sales), bob (HR admin), mallory (outside the org, no staff id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skills.api import Turn
from testkit import envelopes


@dataclass(frozen=True)
class Persona:
    """Who sends a message; `staff_id` is empty for people outside the organisation."""

    key: str  # stable handle, also the sandbox user id (its sender id derives from it)
    nick: str
    staff_id: str
    department: str = ""
    roles: tuple[str, ...] = ()
    locale: str = "zh-CN"
    profile_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_org(self) -> bool:
        return bool(self.staff_id)

    def sandbox_fields(self) -> dict[str, Any]:
        """Fields of POST /sandbox/messages that make the sandbox send as this persona."""
        return {"user_id": self.staff_id or self.key, "nick": self.nick,
                "sender_staff_id_missing": not self.in_org}

    def robot_message(self, text: str, **kw: Any) -> dict[str, Any]:
        """A robot message from this persona (envelope factory for unit tests of stages)."""
        return envelopes.robot_message(text, staff_id=self.staff_id, nick=self.nick,
                                       sender_id=f"$:LWCP_v1:${self.key}", **kw)

    def envelope(self, text: str, **kw: Any) -> dict[str, Any]:
        return envelopes.envelope(self.robot_message(text, **kw))

    def profile_fields(self) -> dict[str, Any]:
        """What an administrator keeps on the profile (department, roles, locale)."""
        return {"department": self.department, "roles": list(self.roles), "locale": self.locale,
                **self.profile_extra}


ALICE = Persona(key="alice", nick="Alice 王", staff_id="alice", department="Sales", roles=("employee",))
BOB = Persona(key="bob", nick="Bob 李", staff_id="bob", department="HR", roles=("employee", "hr_admin"))
MALLORY = Persona(key="mallory", nick="Mallory", staff_id="", locale="en-US")

PERSONAS: dict[str, Persona] = {p.key: p for p in (ALICE, BOB, MALLORY)}
# Lower-case aliases read naturally in tests: run_pipeline("年假有几天", user=alice)
alice, bob, mallory = ALICE, BOB, MALLORY


def make_turn(text: str = "hello there", **fields: Any) -> Turn:
    """A Turn for skill and card unit tests: a group message from staff-1 (Alice) unless `fields` say otherwise."""
    base: dict[str, Any] = {
        "msg_id": "msg-1", "tenant_id": "t1", "conversation_id": "cid-group-1",
        "conversation_type": "2", "user_id": "staff-1", "user_nick": "Alice", "locale": "en-US",
    }
    base.update(fields)
    return Turn(text=text, **base)
