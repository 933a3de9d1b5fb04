"""Replay of dead letters: re-run the pipeline from the failed stage, answering at most once."""

from __future__ import annotations

import logging

from django.db import transaction

from webapp.actions.deadletters import do_mark_replayed
from webapp.models import DeadLetter
from workers.state import dedup, reply_state
from conf.logs import message_context
from contract.pipeline import STAGE_BY_NAME
from workers.pipeline import chain_from

log = logging.getLogger(__name__)


def describe(letter: DeadLetter) -> str:
    return f"#{letter.pk} {letter.msg_id} from {letter.stage} (replayed {letter.replay_count}x)"


def replay(letter: DeadLetter) -> None:
    """Clear the dedup/reply state that would stop the replay, then publish the rest of the chain.

    From preprocess the replay is a new pipeline run, so the old claim is released. The reply
    state is kept when the reply was already sent (the replay then stops at deliver), and an
    in-flight mark left by a crash becomes "not sent": replaying is the operator's decision.
    """
    if letter.stage not in STAGE_BY_NAME:
        raise ValueError(f"dead letter #{letter.pk} has unknown stage {letter.stage!r}")
    with message_context(letter.msg_id, "replay"):
        if letter.stage == "preprocess":
            dedup.release(letter.msg_id)
        previous = reply_state.reset_for_replay(letter.msg_id)
        if previous == reply_state.SENT:
            log.warning("this message was already answered; the replay will not answer again")
        # Marked first, published inside the same transaction: the replayed run's own status
        # updates wait on this row's lock until the commit, so they always land after it.
        # If publishing fails, the mark rolls back.
        with transaction.atomic():
            do_mark_replayed(letter)
            chain_from(letter.stage, letter.payload).apply_async()
        log.info("replayed %s", describe(letter))
