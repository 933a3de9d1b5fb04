"""Admin for reminders and their firings (read-only; cancel is the one operator action)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from webapp.actions.reminders import do_cancel_reminders
from webapp.admin.base import ReadOnlyAdminMixin, actor
from webapp.models.reminders import Reminder, ReminderFiring


class ReminderFiringInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ReminderFiring
    extra = 0
    readonly_fields = ("occurrence_at", "fired_at", "delivered_at", "attempts", "error")


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("title", "user_id", "event_at", "fire_at", "rrule", "status", "occurrence")
    list_filter = ("status", "tenant_id")
    search_fields = ("title", "user_id")
    inlines = (ReminderFiringInline,)
    actions = ("cancel",)

    @admin.action(description="Cancel the selected pending reminders")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Reminder]) -> None:
        n = do_cancel_reminders(list(queryset.values_list("pk", flat=True)), actor(request))
        self.message_user(request, f"{n} reminder(s) cancelled")


@admin.register(ReminderFiring)
class ReminderFiringAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("reminder", "occurrence_at", "fired_at", "delivered_at", "attempts")
    list_filter = ("delivered_at",)
