"""Streamed answers of the run_skill stage: a skill's chunks go into an AI card, deliver only sends the rest.

A streaming skill (`streams = True`, e.g. llm_chat) runs inside the card's chunk iterator, so the
card appears at once ("thinking…") and every outcome — a refusal, a slow first token, a cut
stream, Stop, a worker killed mid-answer and retried — ends on a finalized card. The reply this
stage hands on has kind "ai_card" and `card.delivered` set: deliver sends nothing but the
`overflow` (text beyond the card's size) and records the message as replied.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from skills.api import AISkillPlugin, Reply, SkillError, Turn
from workers import phrases
from workers.dingtalk.card_client import CardClient, CardTarget
from workers.dingtalk.card_streamer import CardStreamer, StreamResult, out_track_id_for
from workers.dingtalk.card_text import note
from workers.errors import CardUnavailable
from workers.resources import current
from workers.state import cards
from workers.state.cards import CancelFlags

log = logging.getLogger(__name__)

AI_CARD = "ai_card"


def streams(skill: AISkillPlugin) -> bool:
    """Whether the skill declares that it answers as a stream of chunks."""
    return bool(getattr(skill, "streams", False))


def cards_enabled() -> bool:
    """AI cards need a template (DINGTALK_AI_CARD_TEMPLATE_ID); without one answers go as markdown."""
    return bool(current().settings.dingtalk_ai_card_template_id)


def cancel_flags() -> CancelFlags:
    """The Stop-button flags of this deployment; the card-callback handler calls `.request(outTrackId)`."""
    return current().cancel_flags


def card_streamer() -> CardStreamer:
    """A streamer over this process's pooled HTTP client, cached token and the shared card budget."""
    res = current()
    settings = res.settings
    tokens = res.dingtalk.tokens
    assert tokens is not None
    client = CardClient(res.http, settings.dingtalk_openapi_endpoint, tokens.get, res.rate_budget)
    return CardStreamer(
        client, settings.dingtalk_ai_card_template_id,
        content_key=settings.dingtalk_ai_card_content_key, cancel_check=res.cancel_flags,
        clock=res.clock.monotonic,
    )


class LazyAnswer(Iterator[str]):
    """pre_process → execute of a streaming skill, run at the first `next()` (on the card's pump thread).

    A skill that answers with a whole Reply (e.g. "AI chat is not set up") yields its text once.
    `close()` may come from another thread (Stop, deadline): it reaches the skill's own stream.
    """

    def __init__(self, skill: AISkillPlugin, turn: Turn) -> None:
        self.skill = skill
        self.turn = turn
        self._inner: Iterator[str] | None = None
        self._closed = False
        self._lock = threading.Lock()
        # For the message's timeline: when the skill was asked, its first and last chunk (monotonic).
        self._opened = 0.0
        self._first = 0.0
        self._last = 0.0
        self._chunks = 0

    def timing(self) -> dict[str, Any]:
        """{first_token_s, total_s, chunks, tokens_in, tokens_out} of the answer so far ({} before it was asked)."""
        if not self._opened or not self._chunks:
            return {}
        timing: dict[str, Any] = {"first_token_s": round(self._first - self._opened, 4),
                                  "total_s": round(self._last - self._opened, 4), "chunks": self._chunks}
        usage = getattr(self._inner, "usage", None)  # an LLM stream's token counts, once it sent them
        if isinstance(usage, dict) and usage:
            timing.update(tokens_in=usage.get("prompt_tokens", 0), tokens_out=usage.get("completion_tokens", 0))
        return timing

    def _open(self) -> Iterator[str]:
        turn = self.skill.pre_process(self.turn)
        result = self.skill.execute(turn)
        if isinstance(result, Reply):
            return iter([self.skill.post_process(turn, result).text])
        return iter(result)

    def __next__(self) -> str:
        if self._inner is None:
            self._opened = current().clock.monotonic()
            inner = self._open()
            with self._lock:
                self._inner = inner
                closed = self._closed
            if closed:  # Stop came while the skill was still opening its stream
                self._close_inner()
                raise StopIteration
        chunk = str(next(self._inner))
        self._last = current().clock.monotonic()
        self._first = self._first or self._last
        self._chunks += 1
        return chunk

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._close_inner()

    def _close_inner(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            try:
                close()
            except ValueError:
                pass  # a generator running on another thread cannot be closed; it stops at its next chunk


# --- what a finished card leaves behind for a retried task ---------------------------------

def _record_key(msg_id: str) -> str:
    return current().key(f"card:{msg_id}")


def remember(msg_id: str, reply: Reply) -> None:
    """Keep the finished card's reply, so a retry of this task (crash after the card was finalized,
    before the task was acknowledged) hands on the same reply instead of asking the skill again."""
    res = current()
    res.redis.set(_record_key(msg_id), json.dumps(reply.to_dict(), ensure_ascii=False),
                  ex=res.settings.dedup_ttl_seconds)


def remembered(msg_id: str) -> Reply | None:
    raw = current().redis.get(_record_key(msg_id))
    if not raw:
        return None
    try:
        return Reply.from_dict(json.loads(raw))
    except (ValueError, TypeError):
        return None


# --- the stage's entry points ----------------------------------------------------------------

def shown_text(result: StreamResult, locale: str) -> str:
    """The whole answer as the user reads it (card and overflow together), with its end note."""
    tail = ""
    if result.status == "stopped":
        tail = note("stopped", locale)
    elif result.status == "failed":
        tail = "\n\n⚠️ " + (result.error or note("failed", locale))
    return (result.text + tail).strip()


def card_reply(result: StreamResult, locale: str) -> Reply:
    """The reply of a finalized card: already delivered; deliver sends only the overflow."""
    return Reply(
        text=shown_text(result, locale),
        kind=AI_CARD,
        card={
            "out_track_id": result.out_track_id,
            "delivered": True,
            "status": result.status,
            "overflow": result.overflow,
            "updates": result.updates,
            "first_visible_s": result.first_visible_s,
        },
        meta={"error": result.error} if result.error else {},
    )


def drain(chunks: Iterator[str], timeout: float, locale: str) -> tuple[str, str]:
    """Read a whole answer within `timeout` s: (text, outcome); a failure keeps the text read so far
    and adds the skill's polite message."""
    parts: list[str] = []
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            for chunk in chunks:
                parts.append(str(chunk))
        except SkillError as exc:
            outcome["error"] = exc.user_message or phrases.apology(locale=locale)
            log.warning("answer stream failed: %s", exc)
        except Exception:
            outcome["error"] = phrases.apology(locale=locale)
            log.exception("answer stream crashed")

    thread = threading.Thread(target=target, name="answer-drain", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        close = getattr(chunks, "close", None)
        if callable(close):
            try:
                close()
            except ValueError:
                pass
        return ("".join(parts) + "\n\n⚠️ " + note("timeout", locale)).strip(), "timeout"
    if "error" in outcome:
        return ("".join(parts) + "\n\n⚠️ " + outcome["error"]).strip(), "skill_error"
    return "".join(parts), "ok"


def markdown_reply(text: str) -> Reply:
    title = next((line.strip("#* ") for line in text.splitlines() if line.strip()), "")[:20]
    return Reply(text=text, kind="markdown", title=title)


def stream_answer(turn: Turn, robot_code: str, chunks: Iterator[str], timeout: float) -> tuple[Reply, str]:
    """Stream `chunks` into the turn's AI card; (reply for the next stages, outcome).

    No card possible (no template, creation refused) → the whole answer as a markdown reply.
    """
    clock = current().clock
    deadline = clock.monotonic() + timeout  # on the streamer's clock
    target = CardTarget.from_turn(turn, robot_code, at_sender=turn.conversation_type == "2")
    # Its owner, so that only the asker's Stop counts (workers.dingtalk.callbacks.refusal).
    cards.remember(out_track_id_for(turn.msg_id), cards.owner_for(turn.to_dict(), {}, kind=cards.AI_CARD))
    try:
        result = card_streamer().stream(turn.msg_id, target, chunks, locale=turn.locale, deadline=deadline)
    except CardUnavailable as exc:
        log.info("no AI card for this answer (%s): replying in markdown", exc)
        remaining = exc.remaining if exc.remaining is not None else chunks
        text, outcome = drain(remaining, max(1.0, deadline - clock.monotonic()), turn.locale)
        return markdown_reply(text or phrases.apology(locale=turn.locale)), outcome
    outcome = {"finished": "ok", "stopped": "stopped"}.get(result.status, "skill_error")
    log.info("answer streamed into card %s: %s, %d update(s), first text after %s s",
             result.out_track_id, result.status, result.updates,
             None if result.first_visible_s is None else round(result.first_visible_s, 3))
    if not result.finalized:
        # The card could not be closed (DingTalk kept refusing): the whole answer goes as markdown.
        return markdown_reply(shown_text(result, turn.locale)), outcome
    reply = card_reply(result, turn.locale)
    remember(turn.msg_id, reply)
    return reply, outcome
