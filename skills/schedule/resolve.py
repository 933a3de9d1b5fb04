"""Turn extracted TimeParts into aware datetimes in the user's zone, or say why that needs a question."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from skills.schedule.when import TimeParts


@dataclass(frozen=True)
class Unclear:
    """The parts do not pin down one moment; `reason` is a Clarification reason."""

    reason: str
    suggestion: datetime | None = None


# Hours said without am/pm: working-hours reading (confirmed on the card before anything is saved);
# 6 and 7 are as likely morning as evening, so those are asked.
_BARE_HOUR_PM = range(1, 6)
_BARE_HOUR_AM = range(8, 12)


def resolve_date(parts: TimeParts, today: date) -> date | Unclear | None:
    """The calendar day the parts name, None when they name none."""
    if parts.month is not None and parts.day is not None:
        year = parts.year or today.year
        try:
            found = date(year, parts.month, parts.day)
        except ValueError:
            return Unclear("invalid_date")
        if parts.year is None and found < today:
            found = found.replace(year=year + 1)
        return found
    if parts.day is not None:
        try:
            found = today.replace(day=parts.day)
            if found < today:
                next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
                found = next_month.replace(day=parts.day)
        except ValueError:
            return Unclear("invalid_date")
        return found
    if parts.delta is not None and parts.delta >= timedelta(days=1):
        return today + timedelta(days=parts.delta.days)
    if parts.day_offset is not None:
        return today + timedelta(days=parts.day_offset)
    if parts.weekday is not None:
        if parts.week_shift is None:  # "周五": the coming Friday, today included
            return today + timedelta(days=(parts.weekday - today.weekday()) % 7)
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(weeks=parts.week_shift, days=parts.weekday)
    if parts.week_only:
        return Unclear("missing_day")
    return None


def resolve_clock(parts: TimeParts) -> tuple[time, int] | Unclear | None:
    """(time of day, days to add) from hour, minute and part of the day; None when no clock was said."""
    if parts.ambiguous_clock:
        return Unclear("ambiguous_hour")
    hour, period = parts.hour, parts.period
    if hour is None:
        if period == "noon":
            return time(12, 0), 0
        return Unclear("missing_hour") if period else None
    if hour > 24 or parts.minute > 59:
        return Unclear("invalid_date")
    carry = 0
    if (parts.explicit_24h and hour >= 13) or hour == 24:
        hour, carry = (0, 1) if hour == 24 else (hour, 0)
    elif period == "small_hours":
        hour = 0 if hour == 12 else hour
    elif period == "morning":
        hour = 0 if hour == 12 else hour
    elif period == "noon":
        hour = hour + 12 if hour < 6 else hour
    elif period in ("afternoon", "evening"):
        if period == "evening" and hour == 12:
            hour, carry = 0, 1
        elif period == "evening" and hour < 5:
            return Unclear("ambiguous_hour")  # "晚上1点": tonight after midnight, or a slip?
        elif hour < 12:
            hour += 12
    elif not parts.explicit_24h and hour != 12:
        if hour in _BARE_HOUR_PM:
            hour += 12
        elif hour not in _BARE_HOUR_AM:
            return Unclear("ambiguous_hour")
    return time(hour, parts.minute), carry


def resolve_when(
    parts: TimeParts,
    now: datetime,
    *,
    base_date: date | None = None,
    allow_past: bool = False,
) -> datetime | Unclear:
    """The moment the parts name, in now's zone. Missing time, missing hour or a past time → Unclear."""
    tz = now.tzinfo
    if parts.delta is not None and parts.delta < timedelta(days=1):
        return (now + parts.delta).replace(second=0, microsecond=0)
    day = resolve_date(parts, now.date())
    if isinstance(day, Unclear):
        return day
    clock = resolve_clock(parts)
    if isinstance(clock, Unclear):
        return clock
    if clock is None:
        return Unclear("missing_time")
    implicit_day = day is None
    day = day or base_date or now.date()
    at_time, carry = clock
    moment = datetime.combine(day + timedelta(days=carry), at_time, tzinfo=tz)
    if moment <= now and not allow_past:
        if implicit_day and base_date is None:
            return Unclear("past", suggestion=moment + timedelta(days=1))
        if parts.weekday is not None and parts.week_shift is None:
            return Unclear("past", suggestion=moment + timedelta(weeks=1))
        return Unclear("past")
    return moment


def resolve_range(parts: TimeParts, now: datetime, default_days: int = 7) -> tuple[datetime, datetime]:
    """The span a listing asks about: a day, a week, or the next `default_days` days."""
    tz = now.tzinfo
    if parts.week_only and parts.week_shift is not None:
        monday = now.date() - timedelta(days=now.weekday()) + timedelta(weeks=parts.week_shift)
        start = datetime.combine(monday, time(0), tzinfo=tz)
        return max(start, now) if parts.week_shift == 0 else start, start + timedelta(weeks=1)
    day = resolve_date(parts, now.date())
    if isinstance(day, date):
        start = datetime.combine(day, time(0), tzinfo=tz)
        return start, start + timedelta(days=1)
    return now, now + timedelta(days=default_days)
