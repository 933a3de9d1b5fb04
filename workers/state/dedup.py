"""The msgId claim: Redis SET NX (shared by replicas) with the MessageRecord row as backstop."""

from __future__ import annotations

import logging
from typing import Any, cast

from contract import keys
from webapp.actions.records import do_claim_record, do_count_duplicate, do_release_claim
from workers.errors import DuplicateMessage
from workers.resources import current

log = logging.getLogger(__name__)


def claim_key(msg_id: str) -> str:
    return current().key(keys.claim(msg_id))


def claim(msg_id: str, run_id: str, record_fields: dict[str, Any]) -> None:
    """Make run_id the only pipeline run of msg_id, or raise DuplicateMessage.

    run_id is the preprocess task id: a copy of the same task redelivered after a worker crash
    carries the same id and passes its own claim; a second DingTalk delivery is a new run.
    """
    res = current()
    client, ttl = res.redis, res.settings.dedup_ttl_seconds
    rkey = claim_key(msg_id)
    if not client.set(rkey, run_id, nx=True, ex=ttl):
        owner = cast("str | None", client.get(rkey))  # a decode_responses client: strings
        if owner != run_id:
            do_count_duplicate(msg_id, owner or "", record_fields)
            raise DuplicateMessage(f"msgId already claimed by run {owner}")
    owner = do_claim_record(msg_id, run_id, record_fields)
    if owner is not None:
        # Redis had lost the key (restart, eviction) but PostgreSQL remembers the owner: give
        # the key back to it, or its own redelivered task would find ours and stop.
        if owner:
            client.set(rkey, owner, ex=ttl)
        else:
            client.delete(rkey)
        raise DuplicateMessage(f"msgId already claimed by run {owner} (found in the database)")
    log.debug("claimed by run %s", run_id)


def release(msg_id: str) -> None:
    """Forget the claim in both stores so a replayed message can be claimed by a new run."""
    current().redis.delete(claim_key(msg_id))
    do_release_claim(msg_id)
