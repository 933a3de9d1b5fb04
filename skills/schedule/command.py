"""What the parser understood: a ScheduleCommand to confirm and run, or a Clarification to ask."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

ACTIONS = ("create", "list", "change", "cancel")


@dataclass(frozen=True)
class TargetRef:
    """Which existing reminder a change/cancel means: its day, its clock time, words of its title."""

    on: date | None = None
    at: datetime | None = None
    keywords: str = ""

    def to_params(self) -> dict[str, Any]:
        return {
            "on": self.on.isoformat() if self.on else None,
            "at": self.at.isoformat() if self.at else None,
            "keywords": self.keywords,
        }

    @classmethod
    def from_params(cls, data: dict[str, Any]) -> TargetRef:
        return cls(
            on=date.fromisoformat(data["on"]) if data.get("on") else None,
            at=datetime.fromisoformat(data["at"]) if data.get("at") else None,
            keywords=str(data.get("keywords", "")),
        )


@dataclass(frozen=True)
class ScheduleCommand:
    """One schedule action. `when` is the event time (aware); the reminder fires `reminder_offset` before."""

    action: str
    title: str = ""
    when: datetime | None = None
    rrule: str | None = None
    reminder_offset: timedelta = timedelta(0)
    target_ref: TargetRef | None = None
    until: datetime | None = None  # list: end of the range that starts at `when`
    shift: timedelta | None = None  # change: move the target by this much
    time_only: bool = False  # change: only a clock time was given; keep the target's date
    date_only: bool = False  # change: only a day was given; keep the target's clock time
    timezone: str = "Asia/Shanghai"
    lang: str = "zh"
    reminder_id: int | None = None  # change/cancel: the reminder picked (set when confirming)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown schedule action {self.action!r}")
        for moment in (self.when, self.until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("schedule times must be time-zone aware")

    @property
    def fire_at(self) -> datetime | None:
        return self.when - self.reminder_offset if self.when else None

    def with_(self, **changes: Any) -> ScheduleCommand:
        return replace(self, **changes)

    def to_params(self) -> dict[str, Any]:
        """JSON primitives only: travels inside card buttons and comes back as turn.params."""
        return {
            "action": self.action,
            "title": self.title,
            "when": self.when.isoformat() if self.when else None,
            "rrule": self.rrule,
            "reminder_offset_s": int(self.reminder_offset.total_seconds()),
            "target_ref": self.target_ref.to_params() if self.target_ref else None,
            "until": self.until.isoformat() if self.until else None,
            "shift_s": int(self.shift.total_seconds()) if self.shift is not None else None,
            "time_only": self.time_only,
            "date_only": self.date_only,
            "timezone": self.timezone,
            "lang": self.lang,
            "reminder_id": self.reminder_id,
        }

    @classmethod
    def from_params(cls, data: dict[str, Any]) -> ScheduleCommand:
        """Inverse of to_params; raises ValueError/KeyError/TypeError on a tampered payload."""
        shift = data.get("shift_s")
        target = data.get("target_ref")
        return cls(
            action=str(data["action"]),
            title=str(data.get("title", ""))[:200],
            when=datetime.fromisoformat(data["when"]) if data.get("when") else None,
            rrule=str(data["rrule"]) if data.get("rrule") else None,
            reminder_offset=timedelta(seconds=int(data.get("reminder_offset_s", 0))),
            target_ref=TargetRef.from_params(target) if isinstance(target, dict) else None,
            until=datetime.fromisoformat(data["until"]) if data.get("until") else None,
            shift=timedelta(seconds=int(shift)) if shift is not None else None,
            time_only=bool(data.get("time_only", False)),
            date_only=bool(data.get("date_only", False)),
            timezone=str(data.get("timezone", "Asia/Shanghai")),
            lang="en" if data.get("lang") == "en" else "zh",
            reminder_id=int(data["reminder_id"]) if data.get("reminder_id") is not None else None,
        )


# Why the parser could not act without asking; the reply module words each one in zh and en.
REASONS = (
    "missing_time",  # a day but no time ("明天提醒我开会")
    "missing_hour",  # a part of the day but no hour ("下午开会")
    "ambiguous_hour",  # 6 or 7 o'clock without am/pm, "midnight"
    "missing_day",  # "下周" / "next week" without a day; "every week" without a day
    "past",  # the time has already passed
    "invalid_date",  # 2月30日
    "nothing_understood",  # no time and no action words
)


@dataclass(frozen=True)
class Clarification:
    """A question back to the user instead of a guess; `suggestions` are offered as one-tap answers."""

    reason: str
    lang: str = "zh"
    suggestions: tuple[ScheduleCommand, ...] = ()

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown clarification reason {self.reason!r}")
