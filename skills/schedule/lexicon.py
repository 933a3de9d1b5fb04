"""Word tables of the schedule parser (Chinese and English); the parser's regexes are built from them."""

from __future__ import annotations

import re

# Chinese digits; 两 is the counting form of 二 ("两点" = 2 o'clock).
CN_DIGITS: dict[str, int] = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}
CN_NUMBER = r"(?:\d{1,4}|[零〇一二两三四五六七八九十]{1,4})"

EN_NUMBERS: dict[str, int] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "forty-five": 45,
    "sixty": 60, "ninety": 90, "couple of": 2, "few": 3,
}
EN_NUMBER = r"(?:\d{1,3}|" + "|".join(sorted(map(re.escape, EN_NUMBERS), key=len, reverse=True)) + ")"

# Monday = 0, as in datetime.weekday() and dateutil's MO..SU.
CN_WEEKDAYS: dict[str, int] = {
    "一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
    "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6,
}
EN_WEEKDAYS: dict[str, int] = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}
EN_WEEKDAY_ALT = "(?:" + "|".join(sorted(EN_WEEKDAYS, key=len, reverse=True)) + ")"
RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
CN_WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
EN_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

EN_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}
EN_MONTH = r"(?:" + "|".join(sorted(EN_MONTHS, key=len, reverse=True)) + r")\b\.?"

# Relative day words → offset in days from today.
CN_RELATIVE_DAYS: dict[str, int] = {
    "今天": 0, "今日": 0, "今儿": 0, "明天": 1, "明日": 1, "明儿": 1,
    "后天": 2, "大后天": 3, "昨天": -1, "前天": -2,
}
# Compound words carrying a day and a part of the day.
CN_DAY_PERIODS: dict[str, tuple[int, str]] = {
    "今早": (0, "morning"), "今晚": (0, "evening"), "今夜": (0, "evening"),
    "明早": (1, "morning"), "明晚": (1, "evening"), "明天早上": (1, "morning"),
}
EN_RELATIVE_DAYS: dict[str, int] = {
    "today": 0, "tomorrow": 1, "tmr": 1, "tmrw": 1, "day after tomorrow": 2,
    "the day after tomorrow": 2, "yesterday": -1,
}

# Parts of the day. The hour rule of each: how a 12-hour clock hour maps to 24 hours.
CN_PERIODS: dict[str, str] = {
    "凌晨": "small_hours", "清晨": "morning", "早上": "morning", "早晨": "morning",
    "上午": "morning", "中午": "noon", "下午": "afternoon", "傍晚": "evening",
    "晚上": "evening", "夜里": "evening", "夜间": "evening",
}
EN_PERIODS: dict[str, str] = {
    "this morning": "morning", "in the morning": "morning", "morning": "morning",
    "this afternoon": "afternoon", "in the afternoon": "afternoon", "afternoon": "afternoon",
    "this evening": "evening", "in the evening": "evening", "evening": "evening",
    "tonight": "evening", "at night": "evening",
}
# A period words implies "today" when no other date is given (tonight, this afternoon).
EN_TODAY_PERIODS = ("this morning", "this afternoon", "this evening", "tonight")

CN_UNITS: dict[str, str] = {
    "分钟": "minutes", "分": "minutes", "小时": "hours", "钟头": "hours",
    "天": "days", "日": "days", "周": "weeks", "星期": "weeks", "礼拜": "weeks",
}
EN_UNITS: dict[str, str] = {
    "minute": "minutes", "minutes": "minutes", "min": "minutes", "mins": "minutes",
    "hour": "hours", "hours": "hours", "hr": "hours", "hrs": "hours",
    "day": "days", "days": "days", "week": "weeks", "weeks": "weeks",
}
EN_UNIT = r"(?:" + "|".join(sorted(EN_UNITS, key=len, reverse=True)) + r")\b"

# Words that say which action the user wants; checked in this order (cancel before create).
ACTION_WORDS: dict[str, tuple[str, ...]] = {
    "cancel": (
        "取消", "删除", "删掉", "删了", "撤销", "不用提醒", "别提醒", "不要提醒", "去掉",
        "cancel", "delete", "remove", "call off", "drop my", "clear my",
    ),
    "change": (
        "改到", "改成", "改为", "改在", "推迟", "延后", "提前到", "挪到", "调到", "调整到", "换到", "移到",
        "reschedule", "move", "postpone", "push back", "push my", "change my", "change the",
        "shift",
    ),
    "list": (
        "有什么安排", "有啥安排", "什么安排", "有哪些安排", "日程", "有什么会", "有哪些会",
        "有哪些提醒", "哪些提醒", "所有的提醒", "所有提醒", "查看提醒", "我的提醒", "提醒列表",
        "的安排", "行程", "忙不忙",
        "what's on", "what is on", "whats on", "my calendar", "my schedule", "my agenda",
        "my reminders", "list reminders", "list my", "show my", "what do i have",
        "any meetings", "am i free", "do i have", "have i got", "coming up",
    ),
}

# Phrases stripped from the start/end of a title ("提醒我开会" → "开会").
CN_TITLE_NOISE = (
    "请帮我", "帮我", "麻烦", "请", "记得", "提醒我一下", "提醒一下", "提醒我", "叫我", "通知我", "提醒",
    "设置一个", "设一个", "设个", "加一个", "添加", "安排一个", "安排", "一下", "要", "去",
    "我", "的", "和", "跟", "与", "同", "有个", "有一个", "有", "在", "开始", "吧", "哦", "啊", "呢",
)
EN_TITLE_NOISE = (
    "please", "can you", "could you", "set a reminder to", "set a reminder for", "set a reminder",
    "add a reminder to", "remind me to", "remind me about", "remind me of", "remind me",
    "schedule a", "schedule an", "schedule", "add an event", "add", "i have a", "i have an",
    "i have", "to", "about", "for", "at", "on", "with", "a", "an", "the", "me", "my", "and",
)
# Titles this generic match any reminder ("取消那个提醒" / "cancel that reminder").
GENERIC_TARGETS = frozenset({
    "", "提醒", "日程", "安排", "活动", "事", "事情", "那个", "这个",
    "reminder", "reminders", "event", "events", "it", "that", "this", "appointment",
})
# "取消周五的会" means whatever meeting-like thing is on Friday, not every reminder of the day.
MEETING_TARGETS = frozenset({"会", "会议", "开会", "meeting", "meetings", "call", "calls"})
MEETING_TITLE_WORDS = (
    "会", "评审", "面试", "例会", "讨论", "沟通", "约", "meeting", "review", "call", "standup", "stand-up",
    "sync", "1:1", "interview", "demo", "retro", "lunch", "dinner",
)


def cn_to_int(text: str) -> int:
    """'十' → 10, '二十三' → 23, '两' → 2, '15' → 15; raises ValueError on anything else."""
    if text.isdigit():
        return int(text)
    if not text or any(ch not in CN_DIGITS and ch != "十" for ch in text):
        raise ValueError(f"not a number: {text!r}")
    if "十" not in text:
        value = 0
        for ch in text:  # "二〇二五" digit by digit
            value = value * 10 + CN_DIGITS[ch]
        return value
    tens, _, ones = text.partition("十")
    return (CN_DIGITS[tens] if tens else 1) * 10 + (CN_DIGITS[ones] if ones else 0)


def en_to_int(text: str) -> int:
    """'2' → 2, 'two' → 2, 'an' → 1."""
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    return EN_NUMBERS[text]
