"""Admin of people and messages: profiles (editable), message records (read-only, with their timeline
page), dead letters (replayable)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils.html import format_html

from webapp.actions.deadletters import do_replay_dead_letter
from webapp.actions.profiles import EDITABLE_FIELDS, do_update_profile
from webapp.admin import timeline
from webapp.admin.base import ReadOnlyAdminMixin, actor
from webapp.models import DeadLetter, MessageRecord, UserProfile


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("nick", "staff_id", "tenant_id", "department", "locale", "timezone", "updated_at")
    list_filter = ("tenant_id", "locale", "department")
    search_fields = ("staff_id", "sender_id", "nick", "department")
    readonly_fields = ("tenant_id", "staff_id", "sender_id", "created_at", "updated_at")
    fields = ("tenant_id", "staff_id", "sender_id", *EDITABLE_FIELDS, "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # profiles are created by the first message of a user

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deleting a person's data is `manage.py erase_user` (every store, audited)

    def save_model(self, request: HttpRequest, obj: UserProfile, form: Any, change: bool) -> None:
        # Through the audited action, never a bare save().
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f in EDITABLE_FIELDS}
        do_update_profile(obj, changes, actor=request.user.get_username())


@admin.register(MessageRecord)
class MessageRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "msg_id", "status", "skill", "conversation_type", "user", "channel",
        "received_at", "replied_at", "duplicate_count", "timeline_link",
    )
    list_filter = ("status", "channel", "conversation_type", "skill", "tenant_id")
    search_fields = ("msg_id", "conversation_id", "user__staff_id", "user__nick", "claimed_by")
    list_select_related = ("user",)
    date_hierarchy = "created_at"

    @admin.display(description="timeline")
    def timeline_link(self, record: MessageRecord) -> str:
        return format_html('<a href="{}">timeline</a>', reverse("admin:webapp_messagerecord_timeline",
                                                                 args=[record.pk]))

    def get_urls(self) -> list[URLPattern]:
        return [*timeline.urls(), *super().get_urls()]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "msg_id", "stage", "short_error", "created_at", "replayed_at",
                    "replay_count")
    list_filter = ("stage", ("replayed_at", admin.EmptyFieldListFilter))
    search_fields = ("msg_id", "error")
    actions = ("replay_selected",)

    @admin.display(description="error")
    def short_error(self, letter: DeadLetter) -> str:
        return letter.error[:120]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The fields stay read-only (obj is never changeable); the changelist's replay action needs
        # the replay permission, which only system admins hold (not every staff user, not auditors).
        return obj is None and self.has_replay_permission(request)

    def has_replay_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("webapp.replay_deadletter")

    @admin.action(description="Replay selected dead letters from their failed stage", permissions=["replay"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> None:
        done, failed = 0, []
        for letter in queryset:
            try:
                do_replay_dead_letter(letter, actor=actor(request))
                done += 1
            except Exception as exc:  # report per letter; the others still go
                failed.append(f"#{letter.pk}: {exc}")
        if done:
            self.message_user(request, f"Replayed {done} dead letter(s).", messages.SUCCESS)
        if failed:
            self.message_user(request, "Failed: " + "; ".join(failed), messages.ERROR)
