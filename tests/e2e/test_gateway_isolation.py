"""Isolation as a contract: 1,000+ users interleaved across groups and private chats, zero context leaks.

Every message carries a unique token; the probe skill answers with the user texts of the session it
was given. A leak is any token in a session that is not an earlier message of the same user in the
same conversation; a gap is an earlier message of that scope missing from it.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from typing import Any

import pytest

from testkit.ledger import token
from testkit.stack import Stack

from .gateway_support import needs_listener, report, start_bot

pytestmark = [pytest.mark.slow, needs_listener]

USERS = 1000
GROUPS = 40
BATCH = 50
RATE = 250  # messages per second offered
SEED = 20240601


def scope_key(message: dict) -> tuple[str, str]:
    return (message.get("conversation_id") or "private", message["user_id"])


def plan(rng: random.Random) -> list[list[dict]]:
    """Batches of messages: every user writes privately and in one of the groups, all shuffled.

    Two messages of one scope never share a batch (a person cannot send two messages in the same
    millisecond; equal createAt would be ordered by msgId, not send order).
    """
    messages = []
    for u in range(USERS):
        user = f"staff{u:04d}"
        group = f"cidgroup{rng.randrange(GROUPS)}=="
        for _ in range(rng.choice((1, 2))):
            messages.append({"user_id": user, "conversation_type": "1"})
        for _ in range(rng.choice((1, 1, 1, 2))):
            messages.append({"user_id": user, "conversation_type": "2", "conversation_id": group})
    rng.shuffle(messages)
    for m in messages:
        m["text"] = f"{token()} from {m['user_id']}"
    batches, pending = [], messages
    while pending:
        batch: list[dict[str, Any]] = []
        seen: set[Any] = set()
        rest: list[dict[str, Any]] = []
        for m in pending:
            if len(batch) < BATCH and scope_key(m) not in seen:
                batch.append(m)
            else:
                rest.append(m)  # and every later message of its scope waits too
            seen.add(scope_key(m))
        batches.append(batch)
        pending = rest
    return batches


def test_no_session_ever_holds_another_users_or_another_chats_words(stack: Stack):
    client = start_bot(stack, skills_concurrency=8, pipeline_concurrency=8)
    batches = plan(random.Random(SEED))
    messages = [m for batch in batches for m in batch]
    scope_of: dict[str, tuple[str, str]] = {}  # msgId → (conversation, user)
    text_of: dict[str, str] = {}
    started = time.monotonic()
    for i, batch in enumerate(batches):
        for body, result in zip(batch, client.send_batch(batch), strict=True):
            scope_of[result["msgId"]] = (result["conversationId"], body["user_id"])
            text_of[result["msgId"]] = body["text"]
        # Paced like a busy tenant (not a flood that overflows the listener's buffer).
        time.sleep(max(0.0, started + (i + 1) * BATCH / RATE - time.monotonic()))
    client.wait_for_replies(len(messages), timeout=400, interval=0.5)
    elapsed = time.monotonic() - started
    time.sleep(2.0)
    replies = client.replies()
    assert len(replies) == len(messages), f"{len(replies)} replies for {len(messages)} messages"

    # "Received" is when the bot accepted a push (its ACK): a push it could not take yet (buffer
    # full) comes again later and is, for the bot, a later message.
    acked = {p["msgId"]: p["ackedAt"] for p in client.pushes()}
    redelivered = sum(1 for p in client.pushes() if p["count"] > 1)
    received_in_scope: dict[tuple[str, str], list[str]] = defaultdict(list)
    for msg_id in sorted(scope_of, key=lambda m: acked[m]):
        received_in_scope[scope_of[msg_id]].append(text_of[msg_id])
    owner_of_text = {text_of[m]: scope for m, scope in scope_of.items()}
    leaks: list[Any] = []
    gaps: list[Any] = []
    for reply in replies:
        scope = scope_of[reply["msg_id"]]
        probe = report(reply)
        assert (probe["conversation"], probe["user"]) == scope
        leaks.extend((reply["msg_id"], t) for t in probe["history"] if owner_of_text.get(t) != scope)
        earlier = received_in_scope[scope][:received_in_scope[scope].index(probe["text"])]
        if probe["history"] != earlier:
            gaps.append((reply["msg_id"], scope, probe["text"], probe["history"], earlier))
    users = len({user for _, user in received_in_scope})
    assert users >= 1000 and len(received_in_scope) >= 1000
    assert not leaks, f"{len(leaks)} leaked entries, e.g. {leaks[:3]}"
    assert not gaps, f"{len(gaps)} sessions not holding exactly the earlier turns of their scope, e.g. {gaps[:3]}"
    print(f"\nisolation: {len(messages)} messages of {users} users in {len(received_in_scope)} scopes, "
          f"0 leaks, 0 gaps, {redelivered} redelivered, {elapsed:.0f} s ({len(messages) / elapsed:.1f} msg/s)")
