"""Read-only admin for the audit log: operators can search it, nobody can change it."""

from __future__ import annotations

from django.contrib import admin

from webapp.admin.base import ReadOnlyAdminMixin
from webapp.models import AuditLog


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "actor", "action", "tenant_id", "target_type", "target_id")
    list_filter = ("action", "target_type", "tenant_id")
    search_fields = ("actor", "action", "target_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditLog._meta.fields]
