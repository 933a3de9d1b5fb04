"""What every admin module shares: who the actor is, and the read-only mixin."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def actor(request: HttpRequest) -> str:
    """The admin user, as audit rows name them."""
    return getattr(request.user, "username", "") or "admin"


class ReadOnlyAdminMixin:
    """Rows written only by the pipeline or by actions: admins look (and run the admin's actions,
    which go through webapp.actions), never add, edit or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
