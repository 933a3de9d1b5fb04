"""Which stored reminders a change/cancel request means ("周五的会", "my 3pm meeting")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from skills.schedule import lexicon as lx
from skills.schedule.command import TargetRef
from skills.schedule.recurrence import occurrences_between
from skills.schedule.store import StoredReminder

_STOPWORDS = frozenset({"the", "my", "a", "an", "to", "on", "at", "with", "for", "of", "and"})


@dataclass(frozen=True)
class Candidate:
    """A reminder and the occurrence of it the request points at."""

    reminder: StoredReminder
    occurrence: datetime


def _terms(text: str) -> set[str]:
    """Comparable pieces of a title: lower-case words, and character bigrams of Chinese runs."""
    lowered = text.lower()
    terms = {w for w in re.findall(r"[a-z0-9]+", lowered) if w not in _STOPWORDS and len(w) > 1}
    terms |= {w.rstrip("s") for w in terms}
    for run in re.findall(r"[\u3400-\u9fff]+", lowered):
        terms |= {run[i:i + 2] for i in range(len(run) - 1)} if len(run) > 1 else {run}
    return terms


def _keyword_match(keywords: str, title: str) -> bool:
    wanted_text = keywords.strip().lower()
    if wanted_text in lx.GENERIC_TARGETS:
        return True
    if wanted_text in lx.MEETING_TARGETS:
        return any(word in title.lower() for word in lx.MEETING_TITLE_WORDS)
    wanted, have = _terms(keywords), _terms(title)
    if keywords in title:
        return True
    return bool(wanted & (have | {t.rstrip("s") for t in have}))


def _occurrences(reminder: StoredReminder, start: datetime, end: datetime) -> list[datetime]:
    tz = ZoneInfo(reminder.timezone)
    anchor = reminder.event_at.astimezone(tz)
    if reminder.rrule:
        return occurrences_between(reminder.rrule, anchor, start, end, limit=5)
    return [anchor] if start <= anchor < end else []


def match(reminders: list[StoredReminder], target: TargetRef, now: datetime, horizon_days: int = 90) -> list[Candidate]:
    """Candidates soonest first: on the target's day and clock time, with a title matching its words."""
    tz = now.tzinfo
    if target.on is not None:
        start = max(now, datetime.combine(target.on, time(0), tzinfo=tz))
        end = datetime.combine(target.on + timedelta(days=1), time(0), tzinfo=tz)
    else:
        start, end = now, now + timedelta(days=horizon_days)
    found = []
    for reminder in reminders:
        if not _keyword_match(target.keywords, reminder.title):
            continue
        for occurrence in _occurrences(reminder, start, end):
            local = occurrence.astimezone(tz)
            if target.at is not None and local.timetz().replace(tzinfo=None) != target.at.astimezone(tz).time():
                continue
            found.append(Candidate(reminder, occurrence))
            break  # the nearest occurrence stands for the series
    return sorted(found, key=lambda c: c.occurrence)
