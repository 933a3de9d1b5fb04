"""One message's life as segments that add up to its end-to-end time, and the search that finds it
(read-only; the admin's timeline page shows it). The stamps come from workers.timeline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet

from contract.pipeline import STAGES
from webapp.models import DeadLetter, MessageRecord, MessageStatus, RoutedTurn

STAGE_NAMES = tuple(stage.name for stage in STAGES)
# Before stamps existed (and for a record without them) the row's own stage times mark the ends.
_LEGACY_ENDS = {"preprocess": "preprocessed_at", "run_skill": "skill_done_at",
                "postprocess": "postprocessed_at", "deliver": "replied_at"}


@dataclass(frozen=True)
class Segment:
    """A stretch of the message's life: the listener's part, a queue wait, or a stage's run."""

    name: str
    kind: str  # listener | queue | run
    start: float
    end: float
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Event:
    at: dt.datetime | None
    what: str
    detail: str = ""


@dataclass
class Timeline:
    """What the page shows about one MessageRecord."""

    record: MessageRecord
    segments: list[Segment] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    routing: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    parts: int | None = None
    end_to_end: float | None = None  # received → replied, when it was replied

    @property
    def total(self) -> float:
        return sum(s.seconds for s in self.segments)

    @property
    def coverage(self) -> float | None:
        """The segments' sum over the end-to-end time (1.0: every millisecond accounted for)."""
        if not self.end_to_end:
            return None
        return self.total / self.end_to_end

    def bars(self) -> list[tuple[Segment, float, float]]:
        """(segment, left %, width %) for a bar chart over the whole life."""
        if not self.segments:
            return []
        origin = self.segments[0].start
        span = max(self.segments[-1].end - origin, 1e-9)
        return [(s, 100 * (s.start - origin) / span, max(0.3, 100 * s.seconds / span)) for s in self.segments]


def _epoch(value: dt.datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _stamped_stages(record: MessageRecord) -> dict[str, dict[str, Any]]:
    stages = (record.timeline or {}).get("stages") or {}
    return {name: stages[name] for name in STAGE_NAMES if isinstance(stages.get(name), dict)}


def _segments(record: MessageRecord) -> list[Segment]:
    received, acked = _epoch(record.received_at), _epoch(record.acked_at)
    replied = _epoch(record.replied_at)
    segments: list[Segment] = []
    mark = received
    if received is not None and acked is not None:
        segments.append(Segment("listener: durable, then ACK", "listener", received, acked))
        mark = acked
    stamped = _stamped_stages(record)
    for name in STAGE_NAMES:
        entry = stamped.get(name)
        if entry is None:
            end = _epoch(getattr(record, _LEGACY_ENDS[name]))
            if end is not None and mark is not None:  # no stamps: queue and run in one
                segments.append(Segment(f"{name} (queue + run)", "run", mark, end))
                mark = end
            continue
        first = float(entry.get("first") or entry.get("start") or 0) or None
        end = entry.get("end")
        if end is None and name == "deliver":
            end = replied
        if first is not None and mark is not None:
            segments.append(Segment(f"{name}: queue", "queue", mark, first))
        if first is None or end is None:
            break  # the stage did not finish (dead letter, still running)
        tries = int(entry.get("tries") or 1)
        detail = f"on {entry.get('worker') or '?'}"
        if tries > 1:
            detail += f", {tries} tries (the last began {float(entry['start']) - first:.3f} s in)"
        segments.append(Segment(f"{name}: run", "run", first, float(end), detail))
        mark = float(end)
    return segments


def _events(record: MessageRecord) -> list[Event]:
    events = [Event(record.received_at, "received by the listener")]
    if record.acked_at:
        events.append(Event(record.acked_at, "durable on the broker, ACKed to DingTalk"))
    if record.duplicate_count:
        events.append(Event(None, f"{record.duplicate_count} duplicate delivery(ies) stopped by the claim"))
    for letter in DeadLetter.objects.filter(msg_id=record.msg_id).order_by("created_at"):
        events.append(Event(letter.created_at, f"dead-lettered at {letter.stage} (#{letter.pk})", letter.error[:500]))
        if letter.replayed_at:
            events.append(Event(letter.replayed_at, f"replayed from {letter.stage}",
                                f"{letter.replay_count} replay(s) of #{letter.pk}; this is the last"))
    if record.replied_at:
        events.append(Event(record.replied_at, f"replied via {record.channel or '?'}"))
    if record.status not in (MessageStatus.REPLIED, MessageStatus.PROCESSING) or record.error:
        events.append(Event(record.updated_at, f"status {record.status}", record.error[:500]))
    return sorted(events, key=lambda e: (e.at is None, e.at or dt.datetime.min.replace(tzinfo=dt.UTC)))


def _routing(record: MessageRecord) -> dict[str, Any]:
    routing: dict[str, Any] = {"intent": record.intent, "skill": record.skill}
    routed = RoutedTurn.objects.filter(msg_id=record.msg_id).first()
    if routed is not None:
        routing.update(decision=routed.decision, predicted=routed.predicted_intent,
                       confidence=round(routed.confidence, 4), stage=routed.router_stage or "-",
                       router_version=routed.router_version or "-",
                       top=", ".join(f"{i} {float(p):.2f}" for i, p in (routed.top or [])[:3]))
    outcome = (record.timeline or {}).get("outcome")
    if outcome:
        routing["outcome"] = outcome
    return routing


def build(record: MessageRecord) -> Timeline:
    """The whole life of one message, from its record, dead letters and routed turn."""
    timeline = record.timeline or {}
    segments = _segments(record)
    received, replied = _epoch(record.received_at), _epoch(record.replied_at)
    end_to_end = replied - received if received is not None and replied is not None else None
    return Timeline(record=record, segments=segments, events=_events(record), routing=_routing(record),
                    llm=dict(timeline.get("llm") or {}), parts=timeline.get("parts"), end_to_end=end_to_end)


def search(query: str = "", since: dt.datetime | None = None, until: dt.datetime | None = None,
           limit: int = 50) -> QuerySet[MessageRecord]:
    """Records by msgId (exact or part), conversation id, user (staff id, nick) and received time."""
    found = MessageRecord.objects.select_related("user").order_by("-created_at")
    query = query.strip()
    if query:
        found = found.filter(Q(msg_id=query) | Q(msg_id__icontains=query) | Q(conversation_id=query)
                             | Q(user__staff_id=query) | Q(user__nick__icontains=query))
    if since is not None:
        found = found.filter(received_at__gte=since)
    if until is not None:
        found = found.filter(received_at__lte=until)
    return found[:limit]
