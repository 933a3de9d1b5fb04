"""Schedule parsing: a table of Chinese and English phrasings → commands, and ambiguity → questions."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from skills.schedule.command import Clarification, ScheduleCommand, TargetRef
from skills.schedule.examples import EXAMPLES
from skills.schedule.parse import parse_schedule

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 4, 10, 0, tzinfo=SHANGHAI)  # a Wednesday, 10:00

# (text, action, title, event time "YYYY-MM-DD HH:MM" local, rrule, reminder offset minutes)
CREATES = [
    ("明天下午3点提醒我开会", "开会", "2025-06-05 15:00", None, 0),
    ("remind me every Monday 9am to send the report", "send the report", "2025-06-09 09:00", "FREQ=WEEKLY;BYDAY=MO", 0),
    ("下周三上午十点和产品评审", "产品评审", "2025-06-11 10:00", None, 15),
    ("in 2 hours remind me to call Bob", "call Bob", "2025-06-04 12:00", None, 0),
    ("十分钟后提醒我关火", "关火", "2025-06-04 10:10", None, 0),
    ("一个半小时后提醒我取快递", "取快递", "2025-06-04 11:30", None, 0),
    ("in half an hour remind me to stretch", "stretch", "2025-06-04 10:30", None, 0),
    ("后天早上8点半叫我起床", "起床", "2025-06-06 08:30", None, 0),
    ("今晚8点提醒我看球", "看球", "2025-06-04 20:00", None, 0),
    ("每个工作日早上9点提醒我写日报", "写日报", "2025-06-05 09:00", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", 0),
    ("每月15号上午10点提醒我交报销", "交报销", "2025-06-15 10:00", "FREQ=MONTHLY;BYMONTHDAY=15", 0),
    ("每两小时提醒我喝水", "喝水", "2025-06-04 12:00", "FREQ=HOURLY;INTERVAL=2", 0),
    ("每天晚上10点提醒我写日记", "写日记", "2025-06-04 22:00", "FREQ=DAILY", 0),
    ("remind me tomorrow at 3pm to call mom", "call mom", "2025-06-05 15:00", None, 0),
    ("set a reminder for March 5 at 10am: dentist", "dentist", "2026-03-05 10:00", None, 0),
    ("remind me on Friday at 4:30pm to submit the timesheet", "submit the timesheet", "2025-06-06 16:30", None, 0),
    ("remind me every other Friday at 3pm to send the invoice", "send the invoice", "2025-06-06 15:00",
     "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", 0),
    ("周五下午三点半和张三面试，提前半小时提醒我", "张三面试", "2025-06-06 15:30", None, 30),
    ("明天3点开会，提前10分钟", "开会", "2025-06-05 15:00", None, 10),
    ("6月10日14:00提醒我体检", "体检", "2025-06-10 14:00", None, 0),
    ("提醒我明天中午订会议室", "订会议室", "2025-06-05 12:00", None, 0),
    ("remind me next Tuesday at noon to book flights", "book flights", "2025-06-10 12:00", None, 0),
    ("下下周一上午九点半部门周会", "部门周会", "2025-06-16 09:30", None, 15),
    ("明天下午３点提醒我交Ｑ３ sales report", "交Q3 sales report", "2025-06-05 15:00", None, 0),
]

# (text, clarification reason): never a guess that could fire at the wrong time.
QUESTIONS = [
    ("明天提醒我交报告", "missing_time"),
    ("remind me on Friday to pay rent", "missing_time"),
    ("下午开会", "missing_hour"),
    ("remind me tonight to take out the trash", "missing_hour"),
    ("明天7点提醒我跑步", "ambiguous_hour"),
    ("remind me at 6 to leave", "ambiguous_hour"),
    ("remind me at midnight to deploy", "ambiguous_hour"),
    ("今天上午9点提醒我打卡", "past"),
    ("remind me at 8am to water the plants", "past"),
    ("2月30日下午3点开会", "invalid_date"),
    ("提醒我下周开会", "missing_day"),
    ("remind me next week to renew the passport", "missing_day"),
    ("每周提醒我交周报", "missing_day"),
    ("提醒我", "nothing_understood"),
]


@pytest.mark.parametrize("text,title,when,rrule,offset", CREATES, ids=[c[0] for c in CREATES])
def test_it_understands_a_reminder_request(text: str, title: str, when: str, rrule: str | None, offset: int) -> None:
    command = parse_schedule(text, NOW)
    assert isinstance(command, ScheduleCommand), command
    assert command.action == "create"
    assert command.title == title
    assert command.when is not None and command.when.tzinfo is not None
    assert command.when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == when
    assert command.rrule == rrule
    assert command.reminder_offset == timedelta(minutes=offset)


@pytest.mark.parametrize("text,reason", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_it_asks_back_instead_of_guessing(text: str, reason: str) -> None:
    question = parse_schedule(text, NOW)
    assert isinstance(question, Clarification), question
    assert question.reason == reason


def test_it_offers_morning_and_evening_for_an_hour_without_am_or_pm() -> None:
    question = parse_schedule("明天7点提醒我跑步", NOW)
    assert isinstance(question, Clarification)
    times = [s.when.strftime("%d %H:%M") for s in question.suggestions if s.when]
    assert times == ["05 07:00", "05 19:00"]


def test_it_offers_tomorrow_when_todays_time_has_passed() -> None:
    question = parse_schedule("remind me at 8am to water the plants", NOW)
    assert isinstance(question, Clarification)
    assert [s.when.strftime("%m-%d %H:%M") for s in question.suggestions if s.when] == ["06-05 08:00"]


def test_it_lists_a_day_a_week_or_the_coming_days() -> None:
    tomorrow = parse_schedule("what's on my calendar tomorrow", NOW)
    assert isinstance(tomorrow, ScheduleCommand) and tomorrow.action == "list"
    assert (tomorrow.when, tomorrow.until) == (datetime(2025, 6, 5, tzinfo=SHANGHAI), datetime(2025, 6, 6, tzinfo=SHANGHAI))
    next_week = parse_schedule("下周有什么安排", NOW)
    assert isinstance(next_week, ScheduleCommand)
    assert (next_week.when, next_week.until) == (datetime(2025, 6, 9, tzinfo=SHANGHAI), datetime(2025, 6, 16, tzinfo=SHANGHAI))
    upcoming = parse_schedule("list my reminders", NOW)
    assert isinstance(upcoming, ScheduleCommand)
    assert (upcoming.when, upcoming.until) == (NOW, NOW + timedelta(days=7))


@pytest.mark.parametrize("text,on,keywords", [
    ("取消周五的会", "2025-06-06", "会"),
    ("cancel my meeting on Friday", "2025-06-06", "meeting"),
    ("删除喝水提醒", None, "喝水"),
    ("把后天的培训删了", "2025-06-06", "培训"),
])
def test_it_finds_what_to_cancel(text: str, on: str | None, keywords: str) -> None:
    command = parse_schedule(text, NOW)
    assert isinstance(command, ScheduleCommand) and command.action == "cancel"
    assert command.target_ref is not None
    assert (command.target_ref.on.isoformat() if command.target_ref.on else None) == on
    assert command.target_ref.keywords == keywords


def test_it_moves_an_event_to_a_new_time_on_the_same_day() -> None:
    command = parse_schedule("把明天的会改到下午4点", NOW)
    assert isinstance(command, ScheduleCommand) and command.action == "change"
    assert command.target_ref == TargetRef(on=NOW.date() + timedelta(days=1), keywords="会")
    assert command.when == datetime(2025, 6, 5, 16, 0, tzinfo=SHANGHAI)


def test_it_moves_an_event_by_a_duration_or_to_another_day() -> None:
    later = parse_schedule("postpone my 3pm meeting by an hour", NOW)
    assert isinstance(later, ScheduleCommand) and later.shift == timedelta(hours=1)
    assert later.target_ref is not None and later.target_ref.at is not None
    assert later.target_ref.at.strftime("%H:%M") == "15:00"
    earlier = parse_schedule("把会议提前半小时", NOW)
    assert isinstance(earlier, ScheduleCommand) and earlier.shift == timedelta(minutes=-30)
    other_day = parse_schedule("周一的例会挪到周二", NOW)
    assert isinstance(other_day, ScheduleCommand) and other_day.date_only
    assert other_day.when is not None and other_day.when.date().isoformat() == "2025-06-10"


def test_it_reads_the_time_in_the_users_zone() -> None:
    new_york = datetime(2025, 6, 4, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    command = parse_schedule("remind me tomorrow at 3pm to call mom", new_york)
    assert isinstance(command, ScheduleCommand) and command.when is not None
    assert command.timezone == "America/New_York"
    assert command.when.astimezone(SHANGHAI).strftime("%m-%d %H:%M") == "06-06 03:00"


def test_a_command_survives_a_trip_through_json_button_params() -> None:
    import json

    command = parse_schedule("周五下午三点半和张三面试，提前半小时提醒我", NOW)
    assert isinstance(command, ScheduleCommand)
    assert ScheduleCommand.from_params(json.loads(json.dumps(command.to_params()))) == command


def test_every_example_utterance_parses_to_its_own_action() -> None:
    wrong = []
    for intent, texts in EXAMPLES.items():
        assert len([t for t in texts if any("\u4e00" <= ch <= "\u9fff" for ch in t)]) >= 20, intent
        assert len([t for t in texts if t.isascii()]) >= 20, intent
        for text in texts:
            result = parse_schedule(text, NOW)
            if isinstance(result, ScheduleCommand) and result.action != intent.split(".")[1]:
                wrong.append((intent, text, result.action))
    assert not wrong
