"""Admin for reminders and their firings (read-mostly; cancel is the one operator action)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from webapp.models.reminders import Reminder, ReminderFiring


class ReminderFiringInline(admin.TabularInline):
    model = ReminderFiring
    extra = 0
    can_delete = False
    readonly_fields = ("occurrence_at", "fired_at", "delivered_at", "attempts", "error")


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ("title", "user_id", "event_at", "fire_at", "rrule", "status", "occurrence")
    list_filter = ("status", "tenant_id")
    search_fields = ("title", "user_id")
    readonly_fields = ("source_key", "occurrence", "fired_at", "created_at", "updated_at")
    inlines = (ReminderFiringInline,)
    actions = ("cancel",)

    @admin.action(description="Cancel the selected pending reminders")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Reminder]) -> None:
        n = queryset.filter(status=Reminder.Status.PENDING).update(status=Reminder.Status.CANCELLED)
        self.message_user(request, f"{n} reminder(s) cancelled")


@admin.register(ReminderFiring)
class ReminderFiringAdmin(admin.ModelAdmin):
    list_display = ("reminder", "occurrence_at", "fired_at", "delivered_at", "attempts")
    list_filter = ("delivered_at",)
    readonly_fields = ("reminder", "occurrence_at", "fired_at", "delivered_at", "attempts", "error")
