"""The people tests talk as: alice (employee, Sales), bob (HR admin), mallory (outside the org, no staff id).

One persona has the same ids in every kind of test: `alice.turn(text)` for skill tests,
`alice.envelope(text)` for stage tests, `alice.send(sandbox_client, text)` through the sandbox, and
`alice.user_id` wherever the pipeline names the person (the staff id, else the sender id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.dingtalk.messages import sender_id as sandbox_sender_id
from skills.api import Turn
from testkit import envelopes

TENANT = "corp-test"  # the corp id of testkit.envelopes messages
GROUP = {"conversation_type": "2", "conversation_id": "cid-group-1"}  # turn(**GROUP): said in a group


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

    @property
    def sender_id(self) -> str:
        """DingTalk's encrypted sender id: the same in the sandbox and in the factories here."""
        return sandbox_sender_id(self.key)

    @property
    def user_id(self) -> str:
        """What the pipeline calls this person (Turn.user_id, session and reminder owners)."""
        return self.staff_id or self.sender_id

    @property
    def conversation_id(self) -> str:
        """The private chat between this persona and the bot (in turns built here)."""
        return f"cid-{self.key}"

    def turn(self, text: str = "hello there", **fields: Any) -> Turn:
        """A Turn this persona said, in their private chat unless `fields` say otherwise (`**GROUP`)."""
        base: dict[str, Any] = {
            "msg_id": "msg-1", "tenant_id": TENANT, "conversation_id": self.conversation_id,
            "conversation_type": "1", "user_id": self.user_id, "user_nick": self.nick, "locale": self.locale,
        }
        return Turn(text=text, **{**base, **fields})

    def sandbox_fields(self) -> dict[str, Any]:
        """Fields of POST /sandbox/messages that make the sandbox send as this persona."""
        return {"user_id": self.staff_id or self.key, "nick": self.nick,
                "sender_staff_id_missing": not self.in_org}

    def send(self, client: Any, text: str = "", **fields: Any) -> dict[str, str]:
        """Inject a message from this persona through a sandbox.client.SandboxClient."""
        return client.send_message(text, **self.sandbox_fields(), **fields)

    def robot_message(self, text: str = "hello", **kw: Any) -> dict[str, Any]:
        """A robot message from this persona (envelope factory for unit tests of stages)."""
        return envelopes.robot_message(text, **{"staff_id": self.staff_id, "nick": self.nick,
                                                "sender_id": self.sender_id, **kw})

    def envelope(self, text: str = "hello", **kw: Any) -> dict[str, Any]:
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
    """Alice in the test group, in English, unless `fields` say otherwise (skill and card unit tests)."""
    return ALICE.turn(text, **{**GROUP, "locale": "en-US", **fields})
