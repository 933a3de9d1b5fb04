"""Per-conversation order across replicas: two pipeline and two skills workers, many conversations at once."""

from __future__ import annotations

import random
import time
from collections import defaultdict

import pytest

from testkit.stack import Stack

from .gateway_support import needs_listener, report, start_bot

pytestmark = [pytest.mark.slow, needs_listener]

CONVERSATIONS = 24
PER_CONVERSATION = 6


def test_replies_of_each_conversation_come_in_send_order_with_the_context_before_them(stack: Stack):
    client = start_bot(stack, pipeline_workers=2, skills_workers=2, skills_pool="prefork",
                       skills_concurrency=2, pipeline_concurrency=6)
    rng = random.Random(6)
    sent: dict[str, list[tuple[str, str]]] = defaultdict(list)  # conversation → [(msgId, text)] in send order
    started = time.monotonic()
    for round_ in range(PER_CONVERSATION):
        batch = []
        for c in range(CONVERSATIONS):
            # A slow skill call for an earlier message tempts a later one to overtake it.
            text = f"c{c} m{round_} sleep={rng.choice([0, 0, 10, 150, 400])}"
            body = {"text": text, "user_id": f"user{c}"}
            if c % 3 == 0:
                body.update(conversation_type="2", conversation_id=f"cidorder{c}==", user_id=f"member{c}")
            batch.append(body)
        for body, result in zip(batch, client.send_batch(batch), strict=True):
            sent[result["conversationId"]].append((result["msgId"], body["text"]))
        time.sleep(0.005)  # distinct createAt per round (DingTalk's clock has millisecond ticks)
    total = CONVERSATIONS * PER_CONVERSATION
    replies = client.wait_for_replies(total, timeout=240)
    elapsed = time.monotonic() - started
    time.sleep(1.5)
    replies = client.replies()
    assert len(replies) == total, f"{len(replies)} replies for {total} messages"

    by_conversation: dict[str, list[dict]] = defaultdict(list)
    for reply in sorted(replies, key=lambda r: r["id"]):  # the order DingTalk received them
        by_conversation[reply["conversation_id"]].append(reply)
    out_of_order = []
    for conversation, messages in sent.items():
        expected = [msg_id for msg_id, _ in messages]
        got = [r["msg_id"] for r in by_conversation[conversation]]
        if got != expected:
            out_of_order.append(conversation)
        for i, reply in enumerate(by_conversation[conversation]):
            # Each skill call saw the conversation's earlier turns of its user, in order.
            assert report(reply)["history"] == [text for _, text in messages[:i]], conversation
    assert not out_of_order, f"{len(out_of_order)} conversations answered out of order"
    print(f"\nordering: {total} messages in {CONVERSATIONS} conversations answered in order in {elapsed:.1f} s")
