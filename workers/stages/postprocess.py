"""Postprocess stage: reply policy (notes, length, apology), session update, its stage timestamp."""

from __future__ import annotations

import logging

from skills.api import Reply
from workers import phrases
from workers.dingtalk.reply_split import split_text
from workers.payload import StagePayload
from workers.resources import current
from workers.state import session

log = logging.getLogger(__name__)

# More parts than this is a flood, not an answer: the rest is cut with a note.
MAX_PARTS = 5


def reply_parts(reply: Reply, notes: list[str], max_bytes: int) -> list[Reply]:
    """The reply as DingTalk-sized messages; notes (e.g. "your input was truncated") go last.

    An action card keeps its buttons on its last part; the parts before it go as markdown.
    """
    if reply.kind == "card" and reply.card:
        # A card is one message; its text is the markdown fallback when no card can be shown.
        return [Reply(text=reply.text, kind="card", title=reply.title, card=reply.card,
                      meta={"part": 1, "of": 1 + bool(notes)})] + [
            Reply(text="\n\n".join(notes), meta={"part": 2, "of": 2}) for _ in notes[:1]]
    text = reply.text.strip()
    if notes:
        text = "\n\n".join([text, *notes]) if text else "\n\n".join(notes)
    if not text:
        text = phrases.apology()
    kind = reply.kind if reply.kind in ("text", "markdown", "action_card") else "text"
    chunks = split_text(text, max_bytes, markdown=kind != "text")
    if len(chunks) > MAX_PARTS:
        log.warning("reply of %d parts cut to %d", len(chunks), MAX_PARTS)
        chunks = chunks[:MAX_PARTS]
        chunks[-1] = chunks[-1] + "\n" + phrases.reply_cut_note(text)
    title = reply.title or text.strip().splitlines()[0][:20]
    last = len(chunks) - 1
    return [
        Reply(
            text=chunk,
            kind=kind if i == last or kind != "action_card" else "markdown",
            title=title,
            buttons=list(reply.buttons) if i == last and kind == "action_card" else [],
            meta={"part": i + 1, "of": len(chunks)},
        )
        for i, chunk in enumerate(chunks)
    ]


def card_follow_up(reply: Reply, notes: list[str], max_bytes: int) -> list[Reply]:
    """An answer already on its AI card: only what did not fit on it (and the notes) still goes out."""
    overflow = str(reply.card.get("overflow") or "")
    if not overflow.strip() and not notes:
        return []
    return reply_parts(Reply(text=overflow, kind="markdown", title=reply.title), notes, max_bytes)


def postprocess(payload: StagePayload) -> StagePayload:
    """Payload with `replies` (the parts to send); the session remembers this turn."""
    res = current()
    settings = res.settings
    turn = payload.turn
    reply = payload.reply or Reply(text="")
    notes = list(payload.notes)
    if reply.card.get("delivered"):
        parts = card_follow_up(reply, notes, settings.reply_max_bytes)
    else:
        parts = reply_parts(reply, notes, settings.reply_max_bytes)
    if turn.text:
        session.append_turn(
            turn.tenant_id,
            turn.conversation_id,
            turn.user_id,
            [{"role": "user", "text": turn.text}, {"role": "assistant", "text": reply.text}],
            turn.conversation_type,
            msg_id=payload.msg_id,  # a retried postprocess does not append the turn twice
        )
    # Carried to deliver, which writes the whole record in its one UPDATE (a dead letter writes
    # it too): one row write per message instead of one per stage.
    return payload.replace(replies=tuple(parts)).with_record(
        postprocessed_at=res.clock.time(), skill=turn.skill, intent=turn.intent)
