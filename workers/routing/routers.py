"""Intent routing in the pipeline: a Router turns a Turn into a Route (skill, or a question), once."""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError

from skills import registry
from skills.api import Reply, Turn
from skills.help.skill import HELP_WORDS
from skills.routing.router import Router as TrainedRouter
from webapp.actions.routing import do_log_routed_turn
from workers import metrics
from workers.resources import Resources, Router, current
from workers.routing.policy import Route, Thresholds, callback_route, decide, intent_of
from workers.routing.source import ArtefactSource, DatabaseArtefacts

log = logging.getLogger(__name__)

__all__ = ["EmbeddingRouter", "KeywordRouter", "Route", "Router", "decide_turn", "route", "start_embedding_router"]


def label_of(skill: str, lang: str) -> str:
    if skill in registry.SKILLS:
        return registry.skill_class(skill).display_name(lang)
    return skill


class KeywordRouter:
    """Routing before any model is trained: `help`/`帮助`/`?` → help, anything else → the fallback."""

    def route(self, turn: Turn) -> Route:
        settings = current().skill_settings
        enabled = settings.enabled_skills(turn.tenant_id, turn.conversation_id)
        words = turn.text.strip().lower()
        if "help" in enabled and any(words.startswith(word) for word in HELP_WORDS):
            return Route(intent="help", skill="help", confidence=1.0, decision="keyword")
        fallback = settings.fallback_skill(turn.tenant_id, turn.conversation_id)
        return Route(intent=intent_of(fallback, settings.intent_map()), skill=fallback, confidence=1.0,
                     decision="keyword")


class EmbeddingRouter:
    """The trained router of this process: loaded in the background at start, swapped atomically
    when a newer version is announced, keyword routing until the first model exists."""

    def __init__(self, source: ArtefactSource, *, poll_seconds: float | None = None,
                 start_wait_seconds: float | None = None) -> None:
        settings = current().settings
        self.source = source
        self.poll_seconds = settings.router_poll_seconds if poll_seconds is None else poll_seconds
        self.start_wait_seconds = (settings.router_start_wait_seconds if start_wait_seconds is None
                                   else start_wait_seconds)
        self.keyword = KeywordRouter()
        self._model: tuple[str, TrainedRouter] | None = None
        self._predict_lock = threading.Lock()  # the embedding engines are not documented thread-safe
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded_in_seconds: float | None = None

    @property
    def version(self) -> str:
        return self._model[0] if self._model else ""

    def start(self) -> EmbeddingRouter:
        self._thread = threading.Thread(target=self._run, name="router-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            if self.refresh():
                self.loaded_in_seconds = time.monotonic() - started
                log.info("router %s ready %.2f s after start", self.version, self.loaded_in_seconds)
        finally:
            self._ready.set()
            self.source.release()
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            finally:
                self.source.release()

    def refresh(self) -> bool:
        """Load and swap in the announced version if it differs from ours; True when swapped."""
        try:
            version = self.source.latest_version()
            if not version or version == self.version:
                return False
            started = time.monotonic()
            model = self.source.load(version)
        except Exception:  # keep routing with what we have; the next poll tries again
            log.exception("could not load the announced router")
            return False
        previous, self._model = self.version, (version, model)  # one reference swap: atomic
        log.info("router %s loaded in %.2f s (was %s)", version, time.monotonic() - started, previous or "none")
        return True

    def route(self, turn: Turn) -> Route:
        if self._model is None and self._thread is not None:
            self._ready.wait(self.start_wait_seconds)  # only the first messages after a start wait
        loaded = self._model
        if loaded is None:
            return self.keyword.route(turn)
        version, model = loaded
        with self._predict_lock:
            prediction = model.predict(turn.text, k=5)
        settings = current().skill_settings
        thresholds = Thresholds(high=float(settings.knob("router.high_confidence")),
                                option_floor=float(settings.knob("router.option_floor")))
        where = (turn.tenant_id, turn.conversation_id)
        return decide(
            prediction, turn, enabled=settings.enabled_skills(*where), intent_skill=settings.intent_map(),
            fallback=settings.fallback_skill(*where), thresholds=thresholds, label_of=label_of,
            version=version,
        )


KEYWORDS = KeywordRouter()  # stateless: one for every process that has not installed another router


def start_embedding_router(res: Resources) -> EmbeddingRouter:
    """The trained router of this process, loading in the background (the worker start calls this)."""
    return EmbeddingRouter(DatabaseArtefacts(res.settings.router_dir)).start()


def decide_turn(turn: Turn) -> tuple[Turn, Reply | None]:
    """The turn with intent, skill and confidence set, and a reply to send instead of running a
    skill (a clarifying question) or None. Button callbacks go back to the skill they belong to."""
    res = current()
    settings = res.skill_settings
    where = (turn.tenant_id, turn.conversation_id)
    decision = callback_route(
        turn, enabled=settings.enabled_skills(*where), intent_skill=settings.intent_map(),
        skills=set(registry.SKILLS) | set(settings.snapshot().remotes), fallback=settings.fallback_skill(*where),
    ) or (res.router or KEYWORDS).route(turn)
    changes: dict[str, object] = {"intent": decision.intent, "skill": decision.skill,
                                  "confidence": decision.confidence}
    metrics.routed(decision.decision, decision.stage, decision.confidence)
    if decision.text is not None:
        changes.update(text=decision.text, params={})
    routed = turn.replace(**changes)
    if decision.decision != "callback":
        _log(routed, decision)
    return routed, Reply.from_dict(decision.reply) if decision.reply else None


def route(turn: Turn) -> Turn:
    """The turn with intent, skill and confidence filled in (callers that cannot send a question)."""
    return decide_turn(turn)[0]


def _log(turn: Turn, decision: Route) -> None:
    try:
        do_log_routed_turn(
            msg_id=turn.msg_id, tenant_id=turn.tenant_id, user_id=turn.user_id, text=turn.text,
            predicted_intent=decision.predicted or decision.intent, confidence=decision.confidence,
            top=[[i, p] for i, p in decision.top], skill=decision.skill, decision=decision.decision,
            router_version=decision.router_version, router_stage=decision.stage,
        )
    except DatabaseError:  # the log helps relabelling; it must not cost the user an answer
        log.warning("could not log the routed turn", exc_info=True)
