"""A skill's `execute` result as the stream of chunks a streaming skill must return (for tests)."""

from __future__ import annotations

from collections.abc import Iterator

from skills.api import Reply


def stream_of(result: Reply | Iterator[str]) -> Iterator[str]:
    """The chunk iterator; fails the test when the skill answered whole instead of streaming."""
    assert not isinstance(result, Reply), f"expected a stream of chunks, got a whole reply: {result!r}"
    return result
