"""Words and cards of the schedule skill: confirm/cancel action cards, questions, listings (zh and en)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from skills.api import Reply
from skills.schedule import lexicon as lx
from skills.schedule.command import Clarification, ScheduleCommand
from skills.schedule.matching import Candidate
from skills.schedule.recurrence import describe

CONFIRM = "schedule.confirm"
DISMISS = "schedule.dismiss"

QUESTIONS: dict[str, tuple[str, str]] = {
    "missing_time": ("请告诉我具体几点，例如“明天下午3点提醒我开会”。",
                     "What time exactly? For example: “remind me tomorrow at 3pm to call Bob”."),
    "missing_hour": ("请告诉我具体几点，例如“下午3点”。", "At what time exactly, e.g. “3pm”?"),
    "ambiguous_hour": ("是早上还是晚上？请说“早上7点”或“晚上7点”。",
                       "Morning or evening? Say “7am” or “7pm”."),
    "missing_day": ("是哪一天？例如“下周三上午10点”。", "Which day? For example “next Wednesday at 10am”."),
    "past": ("这个时间已经过去了，请换一个将来的时间。", "That time has already passed; please give a future time."),
    "invalid_date": ("这个日期不存在，请检查一下。", "That date does not exist; please check it."),
    "nothing_understood": (
        "我可以帮你设置提醒、查看、修改或取消日程，例如“明天下午3点提醒我开会”“我明天有什么安排”“取消周五的会”。",
        ("I can set, list, change or cancel reminders, e.g. “remind me tomorrow at 3pm to call Bob”, "
         "“what's on my calendar tomorrow”, “cancel my meeting on Friday”."),
    ),
}


def _zh(lang: str) -> bool:
    return lang == "zh"


def when_text(moment: datetime, lang: str) -> str:
    """'6月5日(周四) 15:00' / 'Thu Jun 05 15:00'."""
    if _zh(lang):
        return f"{moment.month}月{moment.day}日({lx.CN_WEEKDAY_NAMES[moment.weekday()]}) {moment:%H:%M}"
    return moment.strftime("%a %b %d %H:%M")


def _schedule_line(cmd: ScheduleCommand) -> str:
    assert cmd.when is not None
    if cmd.rrule:
        return describe(cmd.rrule, cmd.when, cmd.lang)
    return when_text(cmd.when, cmd.lang)


def _offset_text(cmd: ScheduleCommand) -> str:
    minutes = int(cmd.reminder_offset.total_seconds() // 60)
    if not minutes:
        return ""
    return f"（提前{minutes}分钟提醒）" if _zh(cmd.lang) else f" (reminder {minutes} min before)"


def button(title: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"title": title, "action": action, "params": params}


def _confirm_buttons(cmd: ScheduleCommand, key: str, confirm_title: str | None = None) -> list[dict[str, Any]]:
    zh = _zh(cmd.lang)
    return [
        button(confirm_title or ("确认" if zh else "Confirm"), CONFIRM, {"command": cmd.to_params(), "key": key}),
        button("取消" if zh else "Cancel", DISMISS, {"lang": cmd.lang}),
    ]


def confirm_create(cmd: ScheduleCommand, key: str) -> Reply:
    """The card shown before anything is saved: what, when, how often; confirm or cancel."""
    zh = _zh(cmd.lang)
    title = "新建提醒" if zh else "New reminder"
    body = (
        f"**{cmd.title}**\n\n{'时间' if zh else 'When'}: {_schedule_line(cmd)}{_offset_text(cmd)}"
        f"\n\n{'时区' if zh else 'Time zone'}: {cmd.timezone}"
    )
    return Reply(text=body, kind="action_card", title=title, buttons=_confirm_buttons(cmd, key))


def clarify(question: Clarification, key: str) -> Reply:
    """A question; with suggestions it becomes a card whose buttons answer it in one tap."""
    zh_text, en_text = QUESTIONS[question.reason]
    text = zh_text if _zh(question.lang) else en_text
    if not question.suggestions:
        return Reply(text=text, meta={"clarify": question.reason})
    buttons = [
        button(_schedule_line(s), CONFIRM, {"command": s.to_params(), "key": f"{key}:{i}"})
        for i, s in enumerate(question.suggestions)
    ]
    buttons.append(button("取消" if _zh(question.lang) else "Cancel", DISMISS, {"lang": question.lang}))
    title = "需要确认时间" if _zh(question.lang) else "Which time?"
    return Reply(text=text, kind="action_card", title=title, buttons=buttons, meta={"clarify": question.reason})


def listing(cmd: ScheduleCommand, items: list[Candidate], limit: int) -> Reply:
    zh = _zh(cmd.lang)
    if not items:
        return Reply(text="这段时间没有安排。" if zh else "Nothing scheduled in that period.")
    lines = []
    for item in items[:limit]:
        repeat = ("（重复）" if zh else " (repeats)") if item.reminder.rrule else ""
        lines.append(f"- {when_text(item.occurrence, cmd.lang)} {item.reminder.title}{repeat}")
    more = len(items) - limit
    if more > 0:
        lines.append(f"- ……还有 {more} 项" if zh else f"- … and {more} more")
    header = "你的安排：" if zh else "Your schedule:"
    return Reply(text=header + "\n\n" + "\n".join(lines), kind="markdown", title=header)


def _candidate_line(c: Candidate, lang: str) -> str:
    repeat = ("（重复）" if _zh(lang) else " (repeats)") if c.reminder.rrule else ""
    return f"{when_text(c.occurrence, lang)} {c.reminder.title}{repeat}"


def not_found(lang: str) -> Reply:
    return Reply(text="没有找到符合的提醒。可以说“我这周有什么安排”查看。" if _zh(lang)
                 else "I found no matching reminder. Try “what's on my calendar this week”.")


def confirm_target(cmd: ScheduleCommand, candidates: list[Candidate], key: str, limit: int = 5) -> Reply:
    """For cancel/change: one candidate → confirm it; several → one button per candidate."""
    zh = _zh(cmd.lang)
    verb = {"cancel": ("取消", "Cancel"), "change": ("修改", "Change")}[cmd.action]
    buttons = []
    lines = []
    for i, candidate in enumerate(candidates[:limit]):
        chosen = cmd.with_(reminder_id=candidate.reminder.id)
        if cmd.action == "change":
            chosen = chosen.with_(when=new_time(cmd, candidate))
        line = _candidate_line(candidate, cmd.lang)
        if cmd.action == "change" and chosen.when is not None:
            line += f" → {when_text(chosen.when, cmd.lang)}"
        lines.append(f"- {line}")
        label = ("确认" if zh else "Confirm") if len(candidates) == 1 else line
        buttons.append(button(label, CONFIRM, {"command": chosen.to_params(), "key": f"{key}:{i}"}))
    buttons.append(button("算了" if zh else "Never mind", DISMISS, {"lang": cmd.lang}))
    question = (f"要{verb[0]}这个提醒吗？" if len(candidates) == 1 else f"要{verb[0]}哪一个？") if zh else (
        f"{verb[1]} this reminder?" if len(candidates) == 1 else f"Which one should I {verb[1].lower()}?")
    series = any(c.reminder.rrule for c in candidates[:limit])
    note = ("\n\n重复提醒会整体" + verb[0] + "。") if zh and series else (
        "\n\nA repeating reminder is changed as a whole series." if series else "")
    return Reply(text=question + "\n\n" + "\n".join(lines) + note, kind="action_card",
                 title=question, buttons=buttons)


def new_time(cmd: ScheduleCommand, candidate: Candidate) -> datetime | None:
    """Where a change moves the candidate: by a shift, onto a clock time of its own day, or to `when`."""
    if cmd.shift is not None:
        return candidate.occurrence + cmd.shift
    if cmd.when is None:
        return None
    if cmd.time_only:
        local = candidate.occurrence.astimezone(cmd.when.tzinfo)
        return cmd.when.replace(year=local.year, month=local.month, day=local.day)
    if cmd.date_only:
        local = candidate.occurrence.astimezone(cmd.when.tzinfo)
        return cmd.when.replace(hour=local.hour, minute=local.minute)
    return cmd.when


def done(cmd: ScheduleCommand) -> Reply:
    zh = _zh(cmd.lang)
    if cmd.action == "create":
        return Reply(text=(f"好的，已设置提醒：{cmd.title}，{_schedule_line(cmd)}{_offset_text(cmd)}。" if zh
                           else f"Done: “{cmd.title}”, {_schedule_line(cmd)}{_offset_text(cmd)}."))
    if cmd.action == "cancel":
        return Reply(text="已取消该提醒。" if zh else "Reminder cancelled.")
    assert cmd.when is not None
    return Reply(text=f"已改到 {when_text(cmd.when, cmd.lang)}。" if zh
                 else f"Moved to {when_text(cmd.when, cmd.lang)}.")


def dismissed(lang: str) -> Reply:
    return Reply(text="好的，没有做任何修改。" if _zh(lang) else "OK, nothing changed.")


def gone(lang: str) -> Reply:
    if _zh(lang):
        return Reply(text="这个提醒已经不存在或已触发。")
    return Reply(text="That reminder no longer exists or has already fired.")


def stale(lang: str) -> Reply:
    return Reply(text="这个时间已经过去了，请重新告诉我时间。" if _zh(lang)
                 else "That time has passed; please tell me the time again.")


def broken_button(lang: str) -> Reply:
    return Reply(text="这个按钮已失效，请重新说一遍。" if _zh(lang) else "That button has expired; please ask again.")
