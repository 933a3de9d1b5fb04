"""Natural language → ScheduleCommand (create / list / change / cancel) or a Clarification."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from skills.schedule import lexicon as lx
from skills.schedule.command import Clarification, ScheduleCommand, TargetRef
from skills.schedule.recurrence import first_on_or_after, to_rrule
from skills.schedule.resolve import Unclear, resolve_clock, resolve_date, resolve_range, resolve_when
from skills.schedule.when import TimeParts, extract, normalize, strip_spans, without_shift

_CJK = re.compile(r"[\u3400-\u9fff]")
_INTENT_ACTIONS = {"schedule.create": "create", "schedule.list": "list",
                   "schedule.change": "change", "schedule.cancel": "cancel"}
# Where a change request splits into "which event" and "the new time".
_CN_CHANGE_SPLIT = re.compile(r"(?:改到|改成|改为|改在|推迟到|延后到|提前到|挪到|调到|调整到|换到|移到)")
_EN_CHANGE_VERB = re.compile(r"\b(?:reschedule|move|postpone|push(?:\s+back)?|change|shift)\b")
_EN_CHANGE_SENTENCE = re.compile(r"^\s*(?:please\s+)?(?:change|move|shift)\b.+\s(?:to|until)\s")
_EN_CHANGE_SPLIT = re.compile(r"\s(?:to|until|till|for)\s(?!.*\s(?:to|until|till)\s)")
_PUNCT = " \t,，。.!！?？、:：;；~～-—\"'“”‘’()（）"
_CN_TRAILING_NOISE = ("的", "吧", "哦", "啊", "呢", "一下", "提醒", "到")  # stripped from a title's end
_EVENT_WORDS = ("会", "评审", "面试", "约", "meeting", "call with", "interview", "review", "lunch", "dinner")
_REMIND_WORDS = ("提醒", "叫我", "通知我", "remind", "alert me", "reminder")


def language_of(text: str) -> str:
    return "zh" if _CJK.search(text) else "en"


def detect_action(text: str, intent: str = "") -> str | None:
    """The action the words ask for; the router's intent decides when the words do not."""
    lowered = normalize(text).lower()
    for action in ("cancel", "change", "list"):
        if any(word in lowered for word in lx.ACTION_WORDS[action]):
            return action
    if _EN_CHANGE_SENTENCE.search(lowered):
        return "change"
    parts = extract(text)
    if parts.shift is not None and not parts.has_clock:  # "把会议提前半小时": moving what exists
        return "change"
    return _INTENT_ACTIONS.get(intent)


def clean_title(text: str, lang: str) -> str:
    """Strip politeness, trigger words and leftovers of removed time phrases from a title."""
    segments = [_clean_segment(s, lang) for s in re.split(r"[,，。;；!！?？:：]", normalize(text))]
    kept = [s for s in segments if s and s not in lx.CN_TITLE_NOISE and s.lower() not in lx.EN_TITLE_NOISE]
    return ("，" if lang == "zh" else ", ").join(kept)


def _clean_segment(text: str, lang: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(_PUNCT)
    if lang == "zh":
        text = re.sub(r"(?:提醒我|提醒一下|叫我|通知我)", " ", text)
        text = re.sub(r"\s+", " ", text).strip(_PUNCT)
        changed = True
        while changed and text:
            changed = False
            for word in lx.CN_TITLE_NOISE + ("把", "将", "到"):
                if text.startswith(word) and len(text) > len(word):
                    text, changed = text[len(word):].strip(_PUNCT), True
                if text.endswith(word) and len(text) > len(word) and word in _CN_TRAILING_NOISE:
                    text, changed = text[: -len(word)].strip(_PUNCT), True
        # Blanked time phrases leave spaces inside Chinese; spaces between Latin words stay.
        return re.sub(r"\s+(?=[\u3400-\u9fff])|(?<=[\u3400-\u9fff])\s+", "", text)
    words = text.split(" ")
    noise = sorted((n.split(" ") for n in lx.EN_TITLE_NOISE), key=len, reverse=True)
    changed = True
    while changed and words:
        changed = False
        for phrase in noise:
            # "remind me" alone is no title, so it may be stripped even when nothing follows it
            keep = len(phrase) - (phrase == ["remind", "me"])
            if [w.lower() for w in words[: len(phrase)]] == phrase and len(words) > keep:
                words, changed = words[len(phrase):], True
                break
        while words and words[-1].lower() in ("at", "on", "to", "for", "in", "by", "back", "please", "'s"):
            words, changed = words[:-1], True
    title = " ".join(words).strip(_PUNCT)
    return re.sub(r"^'s\s+", "", title)


def _without_action_words(text: str) -> str:
    lowered = normalize(text)
    for action in ("cancel", "change", "list"):
        for word in sorted(lx.ACTION_WORDS[action], key=len, reverse=True):
            lowered = re.sub(re.escape(word), " ", lowered, flags=re.IGNORECASE)
    return lowered


def _title_of(text: str, parts: TimeParts, lang: str) -> str:
    return clean_title(_without_action_words(strip_spans(text, parts.spans)), lang)


def _looks_like_event(text: str) -> bool:
    lowered = text.lower()
    return not any(w in lowered for w in _REMIND_WORDS) and any(w in lowered for w in _EVENT_WORDS)


def _target(text: str, now: datetime, lang: str) -> TargetRef | Clarification:
    parts = extract(text)
    day = resolve_date(parts, now.date())
    if isinstance(day, Unclear):
        return Clarification(day.reason, lang)
    at = None
    clock = resolve_clock(parts) if parts.has_clock else None
    if clock is not None and not isinstance(clock, Unclear):
        at = datetime.combine((day or now.date()) + timedelta(days=clock[1]), clock[0], tzinfo=now.tzinfo)
    return TargetRef(on=day, at=at, keywords=_title_of(text, parts, lang))


def _parse_create(
    text: str, now: datetime, tz: str, lang: str, event_offset: timedelta
) -> ScheduleCommand | Clarification:
    parts = extract(text)
    said = _title_of(text, parts, lang)
    title = said or ("提醒" if lang == "zh" else "Reminder")
    if parts.offset is None and parts.shift is not None and parts.shift < timedelta(0):
        parts.offset = -parts.shift  # "明天3点开会，提前10分钟": a lead time, not a move
    offset = parts.offset or (event_offset if _looks_like_event(text) else timedelta(0))
    base = ScheduleCommand("create", title=title, reminder_offset=offset, timezone=tz, lang=lang)
    rec = parts.recurrence
    if rec is not None:
        if rec.freq == "WEEKLY" and not rec.weekdays:
            if parts.weekday is None:
                return Clarification("missing_day", lang)
            rec.weekdays = (parts.weekday,)
            parts.weekday = parts.week_shift = None
        if rec.freq in ("HOURLY", "MINUTELY") and not parts.has_clock:
            first = first_on_or_after(rec, now, now)
            return base.with_(when=first, rrule=to_rrule(rec))
        clock = resolve_clock(parts)
        if clock is None:
            return Clarification("missing_time", lang)
        if isinstance(clock, Unclear):
            return Clarification(clock.reason, lang)
        start_day = resolve_date(parts, now.date())
        if isinstance(start_day, Unclear):
            return Clarification(start_day.reason, lang)
        start = datetime.combine(start_day or now.date(), clock[0], tzinfo=now.tzinfo)
        return base.with_(when=first_on_or_after(rec, start, now), rrule=to_rrule(rec))
    if not parts.found:
        return Clarification("missing_time" if said else "nothing_understood", lang)
    moment = resolve_when(parts, now)
    if isinstance(moment, Unclear):
        return Clarification(moment.reason, lang, suggestions=_suggestions(parts, moment, now, base))
    return base.with_(when=moment)


def _suggestions(
    parts: TimeParts, unclear: Unclear, now: datetime, base: ScheduleCommand
) -> tuple[ScheduleCommand, ...]:
    """One-tap answers to a question: tomorrow for a past time; morning and evening for '7点'."""
    if unclear.suggestion is not None:
        return (base.with_(when=unclear.suggestion),)
    if unclear.reason != "ambiguous_hour" or parts.hour is None or parts.period or not 1 <= parts.hour <= 11:
        return ()
    found = []
    for period in ("morning", "evening"):
        parts.period = period
        moment = resolve_when(parts, now)
        if isinstance(moment, datetime):
            found.append(base.with_(when=moment))
    parts.period = None
    return tuple(found)


def _parse_change(text: str, now: datetime, tz: str, lang: str) -> ScheduleCommand | Clarification:
    norm = normalize(text)
    split = _CN_CHANGE_SPLIT.search(norm)
    if split:
        left, right = norm[: split.start()], norm[split.end():]
    else:
        verb = _EN_CHANGE_VERB.search(norm.lower())
        rest_start = verb.end() if verb else 0
        rest = norm[rest_start:]
        tail = _EN_CHANGE_SPLIT.search(rest.lower())
        left, right = (rest[: tail.start()], rest[tail.end():]) if tail else (rest, rest)
        if not tail:  # "postpone my 3pm meeting by an hour": the move is in the same clause
            left = without_shift(rest)
    target = _target(left, now, lang)
    if isinstance(target, Clarification):
        return target
    new = extract(right)
    base = ScheduleCommand("change", target_ref=target, timezone=tz, lang=lang)
    if new.shift is not None:
        return base.with_(shift=new.shift)
    if not new.found:
        return Clarification("missing_time", lang)
    if new.has_date and not new.has_clock and new.period is None and new.delta is None:
        day = resolve_date(new, now.date())  # "挪到周二": a new day, the same clock time
        if isinstance(day, Unclear):
            return Clarification(day.reason, lang)
        assert day is not None
        return base.with_(when=datetime.combine(day, time(0), tzinfo=now.tzinfo), date_only=True)
    time_only = not new.has_date and new.delta is None
    moment = resolve_when(new, now, base_date=target.on, allow_past=time_only)
    if isinstance(moment, Unclear):
        return Clarification(moment.reason, lang)
    return base.with_(when=moment, time_only=time_only and target.on is None)


def parse_schedule(
    text: str,
    now: datetime,
    *,
    intent: str = "",
    event_offset: timedelta = timedelta(minutes=15),
) -> ScheduleCommand | Clarification:
    """Parse one message said at `now` (aware, in the user's zone) into a command or a question."""
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    tz = getattr(now.tzinfo, "key", str(now.tzinfo))
    lang = language_of(text)
    action = detect_action(text, intent)
    if action == "list":
        start, end = resolve_range(extract(text), now)
        return ScheduleCommand("list", when=start, until=end, timezone=tz, lang=lang)
    if action == "cancel":
        target = _target(_without_action_words(text), now, lang)
        if isinstance(target, Clarification):
            return target
        return ScheduleCommand("cancel", target_ref=target, timezone=tz, lang=lang)
    if action == "change":
        return _parse_change(text, now, tz, lang)
    return _parse_create(text, now, tz, lang, event_offset)
