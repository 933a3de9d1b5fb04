"""Generates chat traffic into the sandbox: private and group conversations, each message traceable."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sandbox.client import SandboxClient
from testkit.ledger import Ledger, token


def message(i: int, conversations: int, text: str | None = None) -> tuple[dict[str, Any], str]:
    """The i-th message of a run: conversation i % conversations, every third one a group chat."""
    conv = i % conversations
    tok = token()
    body: dict[str, Any] = {
        "text": text if text is not None else f"hello {tok} #{i}",
        "user_id": f"user{conv}",
        "nick": f"User {conv}",
    }
    if conv % 3 == 2:
        body.update(conversation_type="2", conversation_id=f"cidgroup{conv}==", user_id=f"member{i % 7}")
    else:
        body.update(conversation_type="1")
    return body, tok


def send(
    client: SandboxClient,
    ledger: Ledger,
    n: int,
    *,
    conversations: int = 50,
    start: int = 0,
    batch: int = 50,
    rate: float | None = None,
) -> None:
    """Inject n messages in batches, optionally paced at `rate` messages per second."""
    began = time.monotonic()
    for first in range(start, start + n, batch):
        items = [message(i, conversations) for i in range(first, min(first + batch, start + n))]
        results = client.send_batch([body for body, _ in items])
        for result, (_, tok) in zip(results, items, strict=True):
            ledger.record(result, tok)
        if rate:
            due = began + (first + len(items) - start) / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def wait_for_all(
    client: SandboxClient,
    ledger: Ledger,
    timeout: float,
    settle: float = 2.0,
    excused: Callable[[], set[str]] | None = None,
) -> list[dict[str, Any]]:
    """Wait until every sent message has a reply (or timeout), then a little longer for strays.

    `excused()` names msgIds known to end without a reply (e.g. marked delivery_unknown after a
    crash mid-send): once every missing reply is excused there is nothing left to wait for.
    """
    deadline = time.monotonic() + timeout
    replies: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        replies = client.replies()
        lost = ledger.check(replies).lost
        if not lost or (excused is not None and set(lost) <= excused()):
            break
        time.sleep(0.25)
    # Late duplicates would arrive after the last first reply; give them a chance to show.
    time.sleep(settle)
    return client.replies()
