"""Find the time expressions of a message (dates, clock times, recurrences, offsets) with their spans."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from skills.schedule import lexicon as lx
from skills.schedule.lexicon import CN_NUMBER as N
from skills.schedule.lexicon import EN_NUMBER as EN


@dataclass
class Recurrence:
    """A repetition rule before it has a start: frequency, interval and the days it falls on."""

    freq: str  # DAILY | WEEKLY | MONTHLY | YEARLY | HOURLY | MINUTELY
    interval: int = 1
    weekdays: tuple[int, ...] = ()
    monthday: int | None = None
    month: int | None = None


@dataclass
class TimeParts:
    """Everything about time found in one message; fields stay None when not said."""

    day_offset: int | None = None
    weekday: int | None = None
    week_shift: int | None = None  # None: the coming one; 0 this week; 1 next week; -1 last week
    week_only: bool = False  # "下周" / "next week" without a day
    year: int | None = None
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int = 0
    explicit_24h: bool = False  # "15:00", "09:30", "3pm": no am/pm guessing needed
    period: str | None = None
    ambiguous_clock: bool = False  # "midnight": ask rather than guess which day
    delta: timedelta | None = None
    shift: timedelta | None = None  # "推迟一小时": moves an existing event
    recurrence: Recurrence | None = None
    offset: timedelta | None = None  # "提前10分钟提醒", "15 minutes before"
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def has_date(self) -> bool:
        return any(v is not None for v in (self.day_offset, self.weekday, self.day)) or bool(
            self.delta and self.delta >= timedelta(days=1)
        )

    @property
    def has_clock(self) -> bool:
        return self.hour is not None

    @property
    def found(self) -> bool:
        return bool(self.spans)


Handler = Callable[["re.Match[str]", TimeParts], None]
_UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}


def normalize(text: str) -> str:
    """Full-width digits and punctuation → ASCII (NFKC); same length for CJK text."""
    return unicodedata.normalize("NFKC", text)


def _num(text: str) -> int:
    """A number written in digits, Chinese numerals or English words."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return lx.en_to_int(text) if text.isascii() else lx.cn_to_int(text)


def _amount(number: str | None, half: str | None) -> float:
    """'两' + '半' → 2.5; '半' → 0.5; 'half an' → 0.5; 'an' + ' and a half' → 1.5; '1.5' → 1.5."""
    if not number:
        value = 1.0
    elif number == "半" or number.startswith("half"):
        return 0.5
    elif re.fullmatch(r"\d+\.\d+", number):
        value = float(number)
    else:
        value = float(_num(number))
    return value + 0.5 if half else value


def _unit(word: str) -> str:
    return lx.CN_UNITS.get(word) or lx.EN_UNITS[word]


def _duration(m: re.Match[str]) -> timedelta:
    amount = _amount(m["n"], m.groupdict().get("half"))
    return timedelta(seconds=round(amount * _UNIT_SECONDS[_unit(m["unit"])]))


# --- handlers: each sets fields of TimeParts from one match -------------------------------------


def _offset(m: re.Match[str], p: TimeParts) -> None:
    p.offset = _duration(m)


def _delta(m: re.Match[str], p: TimeParts) -> None:
    p.delta = _duration(m)


def _shift(m: re.Match[str], p: TimeParts) -> None:
    p.shift = -_duration(m) if m.groupdict().get("earlier") else _duration(m)


def _recur_weekdays(m: re.Match[str], p: TimeParts) -> None:
    p.recurrence = Recurrence("WEEKLY", weekdays=(0, 1, 2, 3, 4))


def _recur_cn_week(m: re.Match[str], p: TimeParts) -> None:
    days = tuple(sorted({lx.CN_WEEKDAYS[ch] for ch in m["days"] if ch in lx.CN_WEEKDAYS}))
    p.recurrence = Recurrence("WEEKLY", weekdays=days)


def _recur_en_week(m: re.Match[str], p: TimeParts) -> None:
    names = re.findall(lx.EN_WEEKDAY_ALT, m["days"])
    days = tuple(sorted({lx.EN_WEEKDAYS[n] for n in names}))
    p.recurrence = Recurrence("WEEKLY", interval=2 if m.groupdict().get("other") else 1, weekdays=days)


def _recur(freq: str) -> Handler:
    """A recurrence with an optional interval in group `n` ('每两小时', 'every 3 days')."""

    def handler(m: re.Match[str], p: TimeParts) -> None:
        n = m.groupdict().get("n")
        if n == "other":
            interval = 2
        elif n:
            amount = _amount(n, m.groupdict().get("half"))
            if freq == "HOURLY" and amount != int(amount):  # "每半小时" → every 30 minutes
                p.recurrence = Recurrence("MINUTELY", interval=round(amount * 60))
                return
            interval = int(amount)
        else:
            interval = 1
        p.recurrence = Recurrence(freq, interval=max(1, interval))

    return handler


def _recur_en_unit(m: re.Match[str], p: TimeParts) -> None:
    freq = {"minutes": "MINUTELY", "hours": "HOURLY", "days": "DAILY", "weeks": "WEEKLY"}
    _recur(freq[lx.EN_UNITS[m["unit"]]])(m, p)


def _recur_monthly(m: re.Match[str], p: TimeParts) -> None:
    p.recurrence = Recurrence("MONTHLY", monthday=_num(m["d"]))


def _recur_yearly(m: re.Match[str], p: TimeParts) -> None:
    p.recurrence = Recurrence("YEARLY", monthday=_num(m["d"]), month=_num(m["mo"]))


def _date_ymd(m: re.Match[str], p: TimeParts) -> None:
    if m["y"]:
        year = _num(m["y"])
        p.year = year + 2000 if year < 100 else year
    p.month, p.day = _num(m["mo"]), _num(m["d"])


def _date_en_month(m: re.Match[str], p: TimeParts) -> None:
    p.month = lx.EN_MONTHS[m["mon"].rstrip(".")]
    p.day = int(m["d"])
    if m["y"]:
        p.year = int(m["y"])


def _monthday(m: re.Match[str], p: TimeParts) -> None:
    p.day = _num(m["d"])


def _day_period(m: re.Match[str], p: TimeParts) -> None:
    p.day_offset, p.period = lx.CN_DAY_PERIODS[m[0]]


def _relative_day(table: dict[str, int]) -> Handler:
    def handler(m: re.Match[str], p: TimeParts) -> None:
        p.day_offset = table[re.sub(r"\s+", " ", m["w"])]

    return handler


_SHIFTS: dict[str, int | None] = {
    "下下": 2, "下个": 1, "下": 1, "这个": 0, "这": 0, "本": 0, "上个": -1, "上": -1,
    "this": 0, "next": 1, "coming": None, "this coming": None, "last": -1,
}


def _shift_of(mod: str | None) -> int | None:
    return _SHIFTS[re.sub(r"\s+", " ", mod)] if mod else None


def _weekday_cn(m: re.Match[str], p: TimeParts) -> None:
    p.weekday = 5 if m["d"] == "末" else lx.CN_WEEKDAYS[m["d"]]
    p.week_shift = _shift_of(m["mod"])


def _weekday_en(m: re.Match[str], p: TimeParts) -> None:
    p.weekday = lx.EN_WEEKDAYS[m["d"]]
    p.week_shift = _shift_of(m["mod"])


def _week_only(m: re.Match[str], p: TimeParts) -> None:
    p.week_only = True
    p.week_shift = _shift_of(m["mod"])


def _period(table: dict[str, str]) -> Handler:
    def handler(m: re.Match[str], p: TimeParts) -> None:
        p.period = table[re.sub(r"\s+", " ", m["w"])]
        if m["w"] in lx.EN_TODAY_PERIODS and p.day_offset is None:
            p.day_offset = 0

    return handler


def _clock_cn(m: re.Match[str], p: TimeParts) -> None:
    p.hour = _num(m["h"])
    minute = m["min"] or m["min1"]
    p.minute = 30 if m["half"] else 15 if m["q1"] else 45 if m["q3"] else _num(minute) if minute else 0
    p.explicit_24h = p.hour >= 13 or p.hour == 0


def _clock_colon(m: re.Match[str], p: TimeParts) -> None:
    p.hour, p.minute = int(m["h"]), int(m["min"])
    p.explicit_24h = p.hour >= 13 or m["h"].startswith("0")


def _clock_ampm(m: re.Match[str], p: TimeParts) -> None:
    hour = int(m["h"]) % 12
    p.hour = hour + 12 if m["ap"].startswith("p") else hour
    p.minute = int(m["min"] or 0)
    p.explicit_24h = True


def _clock_bare(m: re.Match[str], p: TimeParts) -> None:
    p.hour = int(m["h"])
    p.explicit_24h = p.hour >= 13 or p.hour == 0


def _noon(m: re.Match[str], p: TimeParts) -> None:
    p.hour, p.minute, p.explicit_24h = 12, 0, True


def _midnight(m: re.Match[str], p: TimeParts) -> None:
    p.ambiguous_clock = True


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


_CN_WD = "[一二三四五六日天1-7]"
_EN_WD = lx.EN_WEEKDAY_ALT
_EN_WDS = rf"{_EN_WD}s?\b(?:\s*(?:,|and|&|or)\s*{_EN_WD}s?\b)*"
_HALF = r"(?P<half>半)?"
_CN_UNIT = "(?P<unit>分钟|小时|钟头|天|周|星期|礼拜)"
_EN_N = rf"(?P<n>\d+(?:\.\d+)?|half an?|{EN})"
_EN_HALF = r"(?P<half>\s+and\s+a\s+half)?"
_ORD = r"(?:st|nd|rd|th)?"
_CN_MOD = "(?P<mod>下下|下个|下|这个|这|本|上个|上)"
_R = re.compile

# Order matters: longer, more specific expressions first; a match masks its span for later rules.
RULES: list[tuple[re.Pattern[str], Handler]] = [
    # how long before the event to remind
    (_R(rf"(?:提前|前)(?P<n>{N}|半)(?:个)?{_HALF}(?P<unit>分钟|小时|钟头|天)(?=提醒|通知|叫)"), _offset),
    (_R(rf"{_EN_N}\s*(?P<unit>{lx.EN_UNIT}){_EN_HALF}\s+(?:before|early|ahead|in\s+advance)"), _offset),
    # recurrences
    (_R(r"每(?:个)?工作日|工作日每天|每周一(?:到|至)(?:周)?五"), _recur_weekdays),
    (_R(r"every\s+(?:single\s+)?(?:week\s?day|working\s+day|business\s+day)|on\s+weekdays"), _recur_weekdays),
    (_R(rf"每(?:个)?(?:周|星期|礼拜)(?P<days>{_CN_WD}(?:[、，,和及与]?(?:周|星期)?{_CN_WD})*)"), _recur_cn_week),
    (_R(rf"\b(?:every|each)\s+(?P<other>other\s+)?(?P<days>{_EN_WDS})"), _recur_en_week),
    (_R(rf"\bon\s+(?P<days>{_EN_WD}s)\b"), _recur_en_week),
    (_R(rf"每年(?P<mo>{N})月(?P<d>{N})(?:日|号)"), _recur_yearly),
    (_R(rf"每(?:个)?月(?P<d>{N})(?:号|日)"), _recur_monthly),
    (_R(rf"(?:every\s+month|monthly|each\s+month)\s+on\s+the\s+(?P<d>\d{{1,2}}){_ORD}\b"), _recur_monthly),
    (_R(rf"on\s+the\s+(?P<d>\d{{1,2}}){_ORD}\s+of\s+(?:every|each)\s+month"), _recur_monthly),
    (_R(rf"每(?:隔)?(?P<n>{N}|半)(?:个)?{_HALF}(?:小时|钟头)"), _recur("HOURLY")),
    (_R(r"每(?:隔)?(?:个)?(?:小时|钟头)"), _recur("HOURLY")),
    (_R(rf"每(?:隔)?(?P<n>{N})分钟"), _recur("MINUTELY")),
    (_R(rf"每(?:隔)?(?P<n>{N})天"), _recur("DAILY")),
    (_R(r"每天|每日|天天|daily|\bevery\s*day\b|\beach\s+day\b"), _recur("DAILY")),
    (_R(rf"\bevery\s+(?P<n>other|\d+|{EN})?\s*(?P<unit>{lx.EN_UNIT})"), _recur_en_unit),
    (_R(r"\bhourly\b"), _recur("HOURLY")),
    (_R(r"每(?:个)?(?:周|星期|礼拜)|\bweekly\b|\bevery\s+week\b"), _recur("WEEKLY")),
    (_R(r"每(?:个)?月|\bmonthly\b|\bevery\s+month\b"), _recur("MONTHLY")),
    # moves of an existing event ("推迟一小时", "push it back by 30 minutes", "提前半小时")
    (_R(rf"(?:推迟|延后|往后推|(?P<earlier>提前))(?P<n>{N}|半)(?:个)?{_HALF}"
        r"(?P<unit>分钟|小时|钟头|天)(?!后|以后|之后)"), _shift),
    (_R(rf"(?:by\s+)?{_EN_N}\s*(?P<unit>{lx.EN_UNIT}){_EN_HALF}\s+(?:later|(?P<earlier>earlier))"), _shift),
    (_R(rf"\bby\s+{_EN_N}\s*(?P<unit>{lx.EN_UNIT}){_EN_HALF}"), _shift),
    # durations from now
    (_R(rf"过?(?P<n>{N}|半)(?:个)?{_HALF}{_CN_UNIT}(?:以后|之后|后)"), _delta),
    (_R(rf"过(?P<n>{N}|半)(?:个)?{_HALF}{_CN_UNIT}"), _delta),
    (_R(rf"\bin\s+{_EN_N}\s*(?P<unit>{lx.EN_UNIT}){_EN_HALF}"), _delta),
    (_R(rf"{_EN_N}\s*(?P<unit>{lx.EN_UNIT}){_EN_HALF}\s+from\s+now"), _delta),
    # calendar dates
    (_R(rf"(?:(?P<y>\d{{2,4}}|[零〇一二三四五六七八九]{{4}})年)?(?P<mo>{N})月(?P<d>{N})(?:日|号)"), _date_ymd),
    (_R(r"(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})"), _date_ymd),
    (_R(rf"(?:\bon\s+)?(?P<mon>{lx.EN_MONTH})\s*(?P<d>\d{{1,2}}){_ORD}\b(?:,?\s*(?P<y>\d{{4}}))?"), _date_en_month),
    (_R(rf"(?:\bon\s+)?(?:the\s+)?(?P<d>\d{{1,2}}){_ORD}\s+(?:of\s+)?(?P<mon>{lx.EN_MONTH})"
        r"(?:,?\s*(?P<y>\d{4}))?"), _date_en_month),
    (_R(rf"(?<![\d月])(?P<d>{N})号"), _monthday),
    (_R(r"(?<![\d月])(?P<d>\d{1,2})日"), _monthday),
    (_R(rf"\bon\s+the\s+(?P<d>\d{{1,2}}){_ORD}\b"), _monthday),
    (_R(r"\bthe\s+(?P<d>\d{1,2})(?:st|nd|rd|th)\b"), _monthday),
    # relative days and weekdays
    (_R(_alternatives(lx.CN_DAY_PERIODS)), _day_period),
    (_R(rf"(?P<w>{_alternatives(lx.CN_RELATIVE_DAYS)})"), _relative_day(lx.CN_RELATIVE_DAYS)),
    (_R(rf"\b(?P<w>{_alternatives(lx.EN_RELATIVE_DAYS)})(?:'s)?\b"), _relative_day(lx.EN_RELATIVE_DAYS)),
    (_R(rf"{_CN_MOD}?(?:周|星期|礼拜)(?P<d>[一二三四五六日天末])"), _weekday_cn),
    (_R(r"(?:\bon\s+)?(?:\b(?P<mod>this\s+coming|this|next|coming|last)\s+)?"
        rf"(?:on\s+)?\b(?P<d>{_EN_WD})\b(?:'s)?"), _weekday_en),
    (_R(rf"{_CN_MOD}(?:周|星期|礼拜)"), _week_only),
    (_R(r"\b(?P<mod>this|next|last)\s+week\b"), _week_only),
    # parts of the day and clock times
    (_R(rf"(?P<w>{_alternatives(lx.CN_PERIODS)})"), _period(lx.CN_PERIODS)),
    (_R(rf"\b(?P<w>{_alternatives(lx.EN_PERIODS)})\b"), _period(lx.EN_PERIODS)),
    (_R(r"(?:\bat\s+)?\b(?P<h>\d{1,2})(?::(?P<min>\d{2}))?\s*(?P<ap>am|pm|a\.m\.|p\.m\.)"), _clock_ampm),
    (_R(r"(?:\bat\s+)?(?<!\d)(?P<h>\d{1,2}):(?P<min>\d{2})(?!\d)"), _clock_colon),
    (_R(rf"(?P<h>{N})(?:点|时)(?:钟)?"
        r"(?:(?P<half>半)|(?P<q1>一刻)|(?P<q3>三刻)|整|(?P<min>\d{1,2}|[零〇一二三四五六七八九十]{2,3})分?"
        r"|(?P<min1>[一二三四五六七八九十])分)?"), _clock_cn),
    (_R(r"\bat\s+(?P<h>\d{1,2})\b(?:\s*o'?clock)?"), _clock_bare),
    (_R(r"\b(?P<h>\d{1,2})\s*o'?clock"), _clock_bare),
    (_R(r"(?:\bat\s+)?\b(?:noon|midday|lunchtime)\b"), _noon),
    (_R(r"(?:\bat\s+)?\bmidnight\b|半夜|午夜"), _midnight),
]


def extract(text: str) -> TimeParts:
    """Apply the rules in order to lower-cased, normalized text; each match masks its own span."""
    parts = TimeParts()
    masked = normalize(text).lower()
    for pattern, handler in RULES:
        for match in list(pattern.finditer(masked)):
            if not match.group(0).strip():
                continue
            handler(match, parts)
            start, end = match.span()
            parts.spans.append((start, end))
            masked = masked[:start] + " " * (end - start) + masked[end:]
    return parts


def strip_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """The text with the given spans blanked out (for title extraction)."""
    chars = list(normalize(text))
    for start, end in spans:
        for i in range(start, min(end, len(chars))):
            chars[i] = " "
    return "".join(chars)


SHIFT_PATTERNS: tuple[re.Pattern[str], ...] = tuple(p for p, h in RULES if h is _shift)


def without_shift(text: str) -> str:
    """The text with "推迟一小时" / "by an hour" phrases blanked (what remains names the event)."""
    masked = normalize(text)
    for pattern in SHIFT_PATTERNS:
        masked = pattern.sub(lambda m: " " * len(m.group(0)), masked.lower())
    return strip_spans(text, [(i, i + 1) for i, ch in enumerate(masked) if ch == " " and text[i:i + 1] != " "])
