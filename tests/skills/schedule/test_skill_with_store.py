"""ScheduleSkill flows: a card before saving, button callbacks as params, listing, cancel and change."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from skills.api import Reply, SkillError, Turn
from skills.schedule.replies import CONFIRM, DISMISS
from skills.schedule.skill import ScheduleConfig, ScheduleSkill
from skills.schedule.store import ReminderStore
from testkit.personas import Persona, alice, bob, mallory
from tests.skills.schedule.reminder_store import MemoryReminderStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 4, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> MemoryReminderStore:
    return MemoryReminderStore()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def skill(store: MemoryReminderStore, clock: Clock) -> ScheduleSkill:
    return ScheduleSkill(store=store, clock=clock)


def turn(text: str = "", params: dict[str, Any] | None = None, user: Persona = alice, msg: str = "m1",
         **kw: Any) -> Turn:
    return user.turn(text, msg_id=msg, params=params or {}, **kw)


def press(reply: Reply, index: int, user: Persona = alice, msg: str = "cb1") -> Turn:
    """What a button callback becomes: the button's action and params, through JSON, as turn.params."""
    chosen = reply.buttons[index]
    params = json.loads(json.dumps({"action": chosen["action"], **chosen["params"]}))
    return turn(params=params, user=user, msg=msg)


def create(skill: ScheduleSkill, text: str, msg: str = "m1") -> Reply:
    card = skill.execute(turn(text, msg=msg))
    return skill.execute(press(card, 0, msg=f"cb-{msg}"))


def test_the_memory_store_keeps_the_protocol() -> None:
    assert isinstance(MemoryReminderStore(), ReminderStore)


def test_it_shows_a_confirm_card_and_saves_nothing_before_confirmation(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    reply = skill.execute(turn("明天下午3点提醒我开会"))
    assert reply.kind == "action_card"
    assert "开会" in reply.text and "6月5日(周四) 15:00" in reply.text
    assert [b["action"] for b in reply.buttons] == [CONFIRM, DISMISS]
    assert store.rows == {}


def test_confirm_saves_the_reminder_once_even_when_pressed_twice(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    card = skill.execute(turn("remind me every Monday 9am to send the report"))
    first = skill.execute(press(card, 0, msg="cb1"))
    second = skill.execute(press(card, 0, msg="cb2"))
    assert first.text == second.text
    assert "every Monday at 09:00" in first.text
    assert len(store.rows) == 1
    saved = store.rows[1].draft
    assert (saved.user_id, saved.conversation_id, saved.rrule) == (
        alice.user_id, alice.conversation_id, "FREQ=WEEKLY;BYDAY=MO")
    assert saved.event_at == datetime(2025, 6, 9, 9, 0, tzinfo=SHANGHAI)


def test_cancel_button_drops_the_draft(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    card = skill.execute(turn("明天下午3点提醒我开会"))
    reply = skill.execute(press(card, 1))
    assert "没有做任何修改" in reply.text
    assert store.rows == {}


def test_a_confirm_that_arrives_after_the_time_passed_saves_nothing(skill: ScheduleSkill, store: MemoryReminderStore, clock: Clock) -> None:
    card = skill.execute(turn("十分钟后提醒我关火"))
    clock.now = NOW.replace(hour=3)
    reply = skill.execute(press(card, 0))
    assert "已经过去" in reply.text
    assert store.rows == {}


def test_a_tampered_button_payload_gets_a_polite_answer(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    reply = skill.execute(turn(params={"action": CONFIRM, "command": {"action": "explode"}, "key": "k"}))
    assert "失效" in reply.text or "expired" in reply.text
    assert store.rows == {}


def test_an_ambiguous_hour_becomes_a_card_with_both_readings(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    card = skill.execute(turn("明天7点提醒我跑步"))
    assert card.kind == "action_card" and "早上还是晚上" in card.text
    assert [b["title"] for b in card.buttons[:2]] == ["6月5日(周四) 07:00", "6月5日(周四) 19:00"]
    skill.execute(press(card, 1))
    assert store.rows[1].draft.event_at == datetime(2025, 6, 5, 19, 0, tzinfo=SHANGHAI)


def test_a_question_without_suggestions_is_plain_text(skill: ScheduleSkill) -> None:
    reply = skill.execute(turn("明天提醒我交报告"))
    assert reply.kind == "text" and "几点" in reply.text
    assert reply.meta["clarify"] == "missing_time"


def test_listing_shows_occurrences_of_the_day_including_repeats(skill: ScheduleSkill) -> None:
    create(skill, "明天下午3点提醒我开会", msg="a")
    create(skill, "每天晚上10点提醒我写日记", msg="b")
    create(skill, "后天早上8点半叫我起床", msg="c")
    reply = skill.execute(turn("我明天有什么安排"))
    assert reply.kind == "markdown"
    lines = [line for line in reply.text.splitlines() if line.startswith("- ")]
    assert lines == ["- 6月5日(周四) 15:00 开会", "- 6月5日(周四) 22:00 写日记（重复）"]


def test_listing_another_users_schedule_shows_nothing_of_alices(skill: ScheduleSkill) -> None:
    create(skill, "明天下午3点提醒我开会")
    reply = skill.execute(turn("我明天有什么安排", user=bob))
    assert "没有安排" in reply.text


def test_cancel_finds_the_event_and_cancels_it_after_confirmation(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    create(skill, "周五下午三点和张三面试", msg="a")
    create(skill, "周四下午两点去银行", msg="b")
    card = skill.execute(turn("取消周五的会"))
    assert card.kind == "action_card" and "张三面试" in card.text and "银行" not in card.text
    assert store.rows[1].status == "pending"
    done = skill.execute(press(card, 0))
    assert "已取消" in done.text
    assert (store.rows[1].status, store.rows[2].status) == ("cancelled", "pending")


def test_a_forged_cancel_for_someone_elses_reminder_changes_nothing(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    create(skill, "周五下午三点和张三面试")
    card = skill.execute(turn("取消周五的会"))
    reply = skill.execute(press(card, 0, user=mallory))
    assert "不存在" in reply.text
    assert store.rows[1].status == "pending"


def test_a_meeting_word_does_not_match_other_kinds_of_reminders(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    create(skill, "每两小时提醒我喝水", msg="a")
    create(skill, "明天上午10点开会", msg="b")
    card = skill.execute(turn("把明天的会改到下午4点"))
    assert len(card.buttons) == 2 and "喝水" not in card.text
    skill.execute(press(card, 0))
    assert store.rows[2].reminder.event_at == datetime(2025, 6, 5, 16, 0, tzinfo=SHANGHAI)
    assert store.rows[1].reminder.event_at == datetime(2025, 6, 4, 12, 0, tzinfo=SHANGHAI)


def test_cancel_with_nothing_matching_says_so(skill: ScheduleSkill) -> None:
    assert "没有找到" in skill.execute(turn("取消周五的会")).text


def test_several_matches_get_one_button_each(skill: ScheduleSkill) -> None:
    create(skill, "明天上午10点开周会", msg="a")
    create(skill, "明天下午3点开评审会", msg="b")
    card = skill.execute(turn("取消明天的会"))
    assert len(card.buttons) == 3  # two candidates and "never mind"
    assert "10:00" in card.buttons[0]["title"] and "15:00" in card.buttons[1]["title"]


def test_change_moves_the_event_to_the_new_time_on_its_day(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    create(skill, "明天上午10点开会")
    card = skill.execute(turn("把明天的会改到下午4点"))
    assert "→ 6月5日(周四) 16:00" in card.text
    done = skill.execute(press(card, 0))
    assert "已改到" in done.text
    assert store.rows[1].reminder.event_at == datetime(2025, 6, 5, 16, 0, tzinfo=SHANGHAI)


def test_change_by_a_duration_moves_from_the_current_time(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    create(skill, "remind me on Friday at 3pm to join the design review")
    card = skill.execute(turn("push the design review back by 30 minutes"))
    skill.execute(press(card, 0))
    assert store.rows[1].reminder.event_at == datetime(2025, 6, 6, 15, 30, tzinfo=SHANGHAI)


def test_the_users_time_zone_comes_from_the_profile(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    card = skill.execute(turn("remind me tomorrow at 9am to call Lisbon", profile={"timezone": "America/New_York"}))
    skill.execute(press(card, 0))
    saved = store.rows[1].draft
    assert saved.timezone == "America/New_York"
    # 02:00 UTC is still the evening of June 3 in New York, so "tomorrow" is June 4 there.
    assert saved.event_at == datetime(2025, 6, 4, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert isinstance(saved.event_at.tzinfo, ZoneInfo)


def test_an_unknown_zone_in_the_profile_falls_back_to_the_default(skill: ScheduleSkill) -> None:
    reply = skill.execute(turn("明天下午3点提醒我开会", profile={"timezone": "Mars/Olympus"}))
    assert "Asia/Shanghai" in reply.text


def test_a_store_outage_becomes_a_skill_error_with_a_polite_message(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    store.failing = True
    with pytest.raises(SkillError) as raised:
        skill.execute(turn("我明天有什么安排"))
    assert "暂时不可用" in raised.value.user_message


def test_config_rejects_an_unknown_default_zone() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        ScheduleConfig(default_timezone="Nowhere/Land")


def test_a_button_in_the_gateways_card_callback_form_confirms_too(skill: ScheduleSkill, store: MemoryReminderStore) -> None:
    card = skill.execute(turn("明天下午3点提醒我开会"))
    chosen = card.buttons[0]
    params = json.loads(json.dumps({"type": "button", "action": chosen["action"], "params": chosen["params"]}))
    reply = skill.execute(turn(params=params, msg="cb-gateway"))
    assert "开会" in reply.text
    assert len(store.rows) == 1
