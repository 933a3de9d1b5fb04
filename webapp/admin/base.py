"""What every admin module shares: who the actor is, the read-only mixin, and the role gate."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpRequest

from webapp.roles import Role, has_role


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


class RoleGateMixin:
    """Pages only one role may open, whatever else the account holds (superuser included): the
    audit log for auditors, accounts and roles for security admins (三员分立, webapp.roles).
    Within the role, the model permissions the role's group holds still decide each verb."""

    gate_role: ClassVar[Role]

    def _in_role(self, request: HttpRequest) -> bool:
        return has_role(request.user, self.gate_role)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._in_role(request) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._in_role(request) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self._in_role(request) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._in_role(request) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._in_role(request) and super().has_delete_permission(request, obj)  # type: ignore[misc]
