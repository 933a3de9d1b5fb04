"""ScheduleSkill: reminders and events in Chinese or English, confirmed on an action card before saving."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from skills.api import AISkillPlugin, Reply, SkillConfig, SkillError, Turn
from skills.schedule import replies
from skills.schedule.command import Clarification, ScheduleCommand
from skills.schedule.examples import EXAMPLES
from skills.schedule.matching import Candidate, match
from skills.schedule.parse import language_of, parse_schedule
from skills.schedule.recurrence import occurrences_between
from skills.schedule.store import ReminderDraft, ReminderStore


@dataclass(frozen=True)
class ScheduleConfig(SkillConfig):
    """Knobs of the schedule skill; the ReminderStore is handed to the skill (`store=`) by whoever builds it."""

    default_timezone: str = "Asia/Shanghai"
    event_reminder_minutes: int = 15  # events ("下午3点开会") are reminded this long before
    list_days: int = 7
    list_limit: int = 20

    def __post_init__(self) -> None:
        ZoneInfo(self.default_timezone)  # an unknown zone fails at start-up, not per message
        if self.event_reminder_minutes < 0 or self.list_days < 1 or self.list_limit < 1:
            raise ValueError("schedule config values must be positive")


def button_params(params: dict[str, Any]) -> dict[str, Any]:
    """A pressed button's action and parameters, flat: {"action", "command", "key", ...}.

    Accepts the flat form and the gateway's card-callback form
    {"type": "button", "action": ..., "params": {...}}.
    """
    nested = params.get("params")
    if isinstance(nested, dict):
        return {**nested, "action": params.get("action", nested.get("action"))}
    return params


class ScheduleSkill(AISkillPlugin):
    """日程提醒：用自然语言设置、查看、修改、取消提醒，例如“明天下午3点提醒我开会”“我明天有什么安排”“取消周五的会”。
    Schedule: set, list, change or cancel reminders, e.g. "remind me every Monday 9am to send the report",
    "what's on my calendar tomorrow", "move tomorrow's meeting to 4pm".
    """

    name = "schedule"
    intents = ("schedule.create", "schedule.list", "schedule.change", "schedule.cancel")
    examples = EXAMPLES
    label = {"zh": "日程提醒", "en": "Schedule"}
    Config = ScheduleConfig
    timeout_seconds = 10.0

    def __init__(
        self,
        config: ScheduleConfig | None = None,
        *,
        store: ReminderStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(config)
        self._store = store
        self._clock = clock or (lambda: datetime.now(UTC))

    @property
    def cfg(self) -> ScheduleConfig:
        assert isinstance(self.config, ScheduleConfig)
        return self.config

    @property
    def store(self) -> ReminderStore:
        """The store it was given; without one every use fails, and the user hears it is unavailable."""
        if self._store is None:
            raise LookupError("no ReminderStore was given to the schedule skill")
        return self._store

    def zone(self, turn: Turn) -> ZoneInfo:
        """The user's zone from the profile snapshot; the configured default otherwise."""
        name = str(turn.profile.get("timezone") or self.cfg.default_timezone)
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(self.cfg.default_timezone)

    def execute(self, turn: Turn) -> Reply:
        now = self._clock().astimezone(self.zone(turn))
        button = button_params(turn.params)
        if button.get("action") in (replies.CONFIRM, replies.DISMISS):
            return self._on_button(turn.replace(params=button), now)
        parsed = parse_schedule(
            turn.text, now, intent=turn.intent,
            event_offset=timedelta(minutes=self.cfg.event_reminder_minutes),
        )
        if isinstance(parsed, Clarification):
            return replies.clarify(parsed, turn.msg_id)
        if parsed.action == "create":
            return replies.confirm_create(parsed, turn.msg_id)
        if parsed.action == "list":
            return replies.listing(parsed, self._occurrences(turn, parsed), self.cfg.list_limit)
        assert parsed.target_ref is not None
        candidates = match(self._pending(turn), parsed.target_ref, now)
        if not candidates:
            return replies.not_found(parsed.lang)
        return replies.confirm_target(parsed, candidates, turn.msg_id)

    def _pending(self, turn: Turn) -> list[Any]:
        try:
            return self.store.pending(turn.tenant_id, turn.user_id)
        except Exception as exc:  # the store's own errors vary by backend; the user gets one sentence
            raise SkillError(f"reminder store failed: {exc!r}", _unavailable(turn)) from exc

    def _occurrences(self, turn: Turn, cmd: ScheduleCommand) -> list[Candidate]:
        assert cmd.when is not None and cmd.until is not None
        found: list[Candidate] = []
        for reminder in self._pending(turn):
            zone = ZoneInfo(reminder.timezone)
            anchor = reminder.event_at.astimezone(zone)
            if reminder.rrule:
                times = occurrences_between(reminder.rrule, anchor, cmd.when, cmd.until, limit=self.cfg.list_limit)
            else:
                times = [anchor] if cmd.when <= anchor < cmd.until else []
            found.extend(Candidate(reminder, t.astimezone(cmd.when.tzinfo)) for t in times)
        return sorted(found, key=lambda c: c.occurrence)

    def _on_button(self, turn: Turn, now: datetime) -> Reply:
        """A card button came back: confirm runs the command carried in its params; dismiss drops it."""
        params = turn.params
        if params["action"] == replies.DISMISS:
            lang = params.get("lang")
            return replies.dismissed("en" if lang == "en" else "zh" if lang else _lang(turn))
        try:
            cmd = ScheduleCommand.from_params(params["command"])
            key = str(params["key"])
        except (KeyError, TypeError, ValueError):
            return replies.broken_button(_lang(turn))
        try:
            return self._run_confirmed(turn, cmd, key, now)
        except SkillError:
            raise
        except Exception as exc:
            raise SkillError(f"reminder store failed: {exc!r}", _unavailable(turn)) from exc

    def _run_confirmed(self, turn: Turn, cmd: ScheduleCommand, key: str, now: datetime) -> Reply:
        try:  # button params carry fixed offsets; recurrences need the named zone back
            zone = ZoneInfo(cmd.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return replies.broken_button(cmd.lang)
        if cmd.when is not None:
            cmd = cmd.with_(when=cmd.when.astimezone(zone))
        if cmd.action == "create":
            if cmd.when is None or (cmd.rrule is None and cmd.when <= now):
                return replies.stale(cmd.lang)
            draft = ReminderDraft(
                key=f"{turn.tenant_id}:{turn.user_id}:{key}"[:200],
                tenant_id=turn.tenant_id, user_id=turn.user_id,
                conversation_id=turn.conversation_id, conversation_type=turn.conversation_type,
                title=cmd.title, event_at=cmd.when, rrule=cmd.rrule,
                reminder_offset=cmd.reminder_offset, timezone=cmd.timezone, lang=cmd.lang,
            )
            self.store.create(draft)
            return replies.done(cmd)
        if cmd.reminder_id is None:
            return replies.broken_button(cmd.lang)
        if cmd.action == "cancel":
            ok = self.store.cancel(turn.tenant_id, turn.user_id, cmd.reminder_id)
            return replies.done(cmd) if ok else replies.gone(cmd.lang)
        if cmd.action == "change":
            if cmd.when is None or cmd.when <= now:
                return replies.stale(cmd.lang)
            moved = self.store.reschedule(turn.tenant_id, turn.user_id, cmd.reminder_id, cmd.when)
            return replies.done(cmd) if moved else replies.gone(cmd.lang)
        return replies.broken_button(cmd.lang)


def _lang(turn: Turn) -> str:
    if turn.text:
        return language_of(turn.text)
    return "zh" if turn.locale.lower().startswith("zh") else "en"


def _unavailable(turn: Turn) -> str:
    if _lang(turn) == "zh":
        return "日程服务暂时不可用，请稍后再试。"
    return "The schedule service is unavailable; please try again later."

