"""Recurrence rules (RFC 5545 RRULE via dateutil): build, next occurrence in wall-clock time, describe."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from skills.schedule import lexicon as lx
from skills.schedule.when import Recurrence


def to_rrule(rec: Recurrence) -> str:
    """'FREQ=WEEKLY;BYDAY=MO,WE' — the RRULE body, without DTSTART (the anchor is stored apart)."""
    fields = [f"FREQ={rec.freq}"]
    if rec.interval > 1:
        fields.append(f"INTERVAL={rec.interval}")
    if rec.weekdays:
        fields.append("BYDAY=" + ",".join(lx.RRULE_DAYS[d] for d in rec.weekdays))
    if rec.month:
        fields.append(f"BYMONTH={rec.month}")
    if rec.monthday:
        fields.append(f"BYMONTHDAY={rec.monthday}")
    return ";".join(fields)


def _rule(body: str, anchor: datetime) -> rrule:
    """The rule iterated in naive local wall time, so 09:00 stays 09:00 across DST changes."""
    rule = rrulestr(body, dtstart=anchor.replace(tzinfo=None))
    if not isinstance(rule, rrule):
        raise ValueError(f"not a single RRULE: {body!r}")
    return rule


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz)


def _zone(anchor: datetime) -> ZoneInfo:
    if not isinstance(anchor.tzinfo, ZoneInfo):
        raise ValueError("the anchor of a recurrence must carry a ZoneInfo time zone")
    return anchor.tzinfo


def next_occurrence(body: str, anchor: datetime, after: datetime, inclusive: bool = False) -> datetime | None:
    """The first occurrence strictly after `after` (or at it, when inclusive), in the anchor's zone."""
    tz = _zone(anchor)
    local_after = after.astimezone(tz).replace(tzinfo=None)
    found = _rule(body, anchor).after(local_after, inc=inclusive)
    return _aware(found, tz) if found else None


def occurrences_between(body: str, anchor: datetime, start: datetime, end: datetime, limit: int = 50) -> list[datetime]:
    """Occurrences in [start, end), at most `limit` (hourly rules over a week would be many)."""
    tz = _zone(anchor)
    rule = _rule(body, anchor)
    found: list[datetime] = []
    local_start = start.astimezone(tz).replace(tzinfo=None)
    local_end = end.astimezone(tz).replace(tzinfo=None)
    for occurrence in rule.xafter(local_start, inc=True):
        if occurrence >= local_end or len(found) >= limit:
            break
        found.append(_aware(occurrence, tz))
    return found


def first_on_or_after(rec: Recurrence, start: datetime, now: datetime) -> datetime:
    """The first occurrence of `rec` at `start`'s wall time that is not in the past."""
    body = to_rrule(rec)
    if rec.freq in ("HOURLY", "MINUTELY") and start <= now:
        step = timedelta(hours=rec.interval) if rec.freq == "HOURLY" else timedelta(minutes=rec.interval)
        return now.replace(second=0, microsecond=0) + step
    found = next_occurrence(body, start, max(start, now), inclusive=start > now)
    if found is None:
        raise ValueError(f"rule {body!r} has no future occurrence")
    return found


def describe(body: str, anchor: datetime, lang: str) -> str:
    """'每周一、周三 09:00' / 'every Monday, Wednesday at 09:00'."""
    parts = dict(item.split("=", 1) for item in body.split(";"))
    freq, interval = parts["FREQ"], int(parts.get("INTERVAL", "1"))
    clock = anchor.strftime("%H:%M")
    days = [lx.RRULE_DAYS.index(d) for d in parts.get("BYDAY", "").split(",") if d]
    zh = lang == "zh"
    if freq == "WEEKLY" and days == [0, 1, 2, 3, 4]:
        return f"每个工作日 {clock}" if zh else f"every weekday at {clock}"
    if freq == "WEEKLY":
        days = days or [anchor.weekday()]
        if zh:
            every = "每" if interval == 1 else f"每{interval}周的"
            return every + "、".join(lx.CN_WEEKDAY_NAMES[d] for d in days) + f" {clock}"
        every = "every " if interval == 1 else f"every {interval} weeks on "
        return every + ", ".join(lx.EN_WEEKDAY_NAMES[d] for d in days) + f" at {clock}"
    if freq == "MONTHLY":
        day = parts.get("BYMONTHDAY", str(anchor.day))
        return f"每月{day}日 {clock}" if zh else f"monthly on day {day} at {clock}"
    if freq == "YEARLY":
        return f"每年{anchor.month}月{anchor.day}日 {clock}" if zh else f"every year on {anchor:%b %d} at {clock}"
    unit_zh = {"DAILY": "天", "HOURLY": "小时", "MINUTELY": "分钟"}[freq]
    unit_en = {"DAILY": "day", "HOURLY": "hour", "MINUTELY": "minute"}[freq]
    if freq == "DAILY":
        if zh:
            return f"每天 {clock}" if interval == 1 else f"每{interval}天 {clock}"
        return f"every day at {clock}" if interval == 1 else f"every {interval} days at {clock}"
    if zh:
        return f"每{unit_zh}" if interval == 1 else f"每{interval}{unit_zh}"
    return f"every {unit_en}" if interval == 1 else f"every {interval} {unit_en}s"
