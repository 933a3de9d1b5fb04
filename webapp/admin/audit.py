"""Read-only admin for the audit log: auditors search it; nobody changes it, operators do not see it."""

from __future__ import annotations

from django.contrib import admin

from webapp.admin.base import ReadOnlyAdminMixin, RoleGateMixin
from webapp.models import AuditLog
from webapp.roles import Role


@admin.register(AuditLog)
class AuditLogAdmin(RoleGateMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    gate_role = Role.AUDITOR
    list_display = ("id", "created_at", "actor", "action", "tenant_id", "target_type", "target_id")
    list_filter = ("action", "target_type", "tenant_id")
    search_fields = ("actor", "action", "target_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditLog._meta.fields]
