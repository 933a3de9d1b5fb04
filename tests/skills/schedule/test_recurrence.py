"""Recurrence: next occurrence in wall-clock time, across month ends and DST, and its description."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from skills.schedule.recurrence import describe, first_on_or_after, next_occurrence, occurrences_between, to_rrule
from skills.schedule.when import Recurrence

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def test_the_next_weekly_occurrence_is_the_coming_monday_at_the_same_time() -> None:
    anchor = datetime(2025, 6, 9, 9, 0, tzinfo=SHANGHAI)  # a Monday
    after = datetime(2025, 6, 9, 9, 0, tzinfo=SHANGHAI)
    assert next_occurrence("FREQ=WEEKLY;BYDAY=MO", anchor, after) == datetime(2025, 6, 16, 9, 0, tzinfo=SHANGHAI)
    assert next_occurrence("FREQ=WEEKLY;BYDAY=MO", anchor, after, inclusive=True) == after


def test_a_weekly_reminder_keeps_its_wall_clock_time_across_daylight_saving() -> None:
    anchor = datetime(2025, 3, 3, 9, 0, tzinfo=NEW_YORK)  # EST (UTC-5); DST starts 2025-03-09
    found = next_occurrence("FREQ=WEEKLY;BYDAY=MO", anchor, datetime(2025, 3, 5, tzinfo=NEW_YORK))
    assert found is not None
    assert (found.hour, found.minute) == (9, 0)
    assert found.utcoffset().total_seconds() == -4 * 3600  # EDT now: 13:00 UTC, not 14:00


def test_a_monthly_reminder_on_the_31st_skips_short_months() -> None:
    anchor = datetime(2025, 1, 31, 10, 0, tzinfo=SHANGHAI)
    found = next_occurrence("FREQ=MONTHLY;BYMONTHDAY=31", anchor, anchor)
    assert found == datetime(2025, 3, 31, 10, 0, tzinfo=SHANGHAI)


def test_weekdays_skip_the_weekend() -> None:
    anchor = datetime(2025, 6, 6, 9, 0, tzinfo=SHANGHAI)  # Friday
    body = to_rrule(Recurrence("WEEKLY", weekdays=(0, 1, 2, 3, 4)))
    assert next_occurrence(body, anchor, anchor) == datetime(2025, 6, 9, 9, 0, tzinfo=SHANGHAI)


def test_occurrences_between_lists_each_once_within_the_range_and_limit() -> None:
    anchor = datetime(2025, 6, 4, 22, 0, tzinfo=SHANGHAI)
    days = occurrences_between("FREQ=DAILY", anchor, datetime(2025, 6, 5, tzinfo=SHANGHAI),
                               datetime(2025, 6, 8, tzinfo=SHANGHAI))
    assert [d.day for d in days] == [5, 6, 7]
    assert len(occurrences_between("FREQ=MINUTELY;INTERVAL=5", anchor, anchor, datetime(2025, 6, 6, tzinfo=SHANGHAI), limit=10)) == 10


def test_the_first_occurrence_is_never_in_the_past() -> None:
    now = datetime(2025, 6, 4, 10, 0, tzinfo=SHANGHAI)  # Wednesday 10:00
    start = datetime(2025, 6, 4, 9, 0, tzinfo=SHANGHAI)  # 09:00 today has passed
    first = first_on_or_after(Recurrence("DAILY"), start, now)
    assert first == datetime(2025, 6, 5, 9, 0, tzinfo=SHANGHAI)
    hourly = first_on_or_after(Recurrence("HOURLY", interval=2), now, now)
    assert hourly == datetime(2025, 6, 4, 12, 0, tzinfo=SHANGHAI)


def test_a_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError):
        next_occurrence("FREQ=DAILY", datetime(2025, 6, 4, 9, 0), datetime(2025, 6, 4, 9, 0, tzinfo=SHANGHAI))  # noqa: DTZ001 - naive on purpose


@pytest.mark.parametrize("body,lang,text", [
    ("FREQ=WEEKLY;BYDAY=MO", "zh", "每周一 09:00"),
    ("FREQ=WEEKLY;BYDAY=MO,WE", "en", "every Monday, Wednesday at 09:00"),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "zh", "每个工作日 09:00"),
    ("FREQ=MONTHLY;BYMONTHDAY=15", "zh", "每月15日 09:00"),
    ("FREQ=HOURLY;INTERVAL=2", "en", "every 2 hours"),
    ("FREQ=DAILY", "en", "every day at 09:00"),
])
def test_a_rule_is_described_in_the_users_language(body: str, lang: str, text: str) -> None:
    assert describe(body, datetime(2025, 6, 9, 9, 0, tzinfo=SHANGHAI), lang) == text
