"""Accounts, roles, TOTP devices and lockouts: the security admin's pages, every change through an audited action."""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.actions.operators import (
    do_delete_operator,
    do_delete_role,
    do_record_otp_device,
    do_record_password_change,
    do_save_operator,
    do_save_role,
)
from webapp.admin.base import RoleGateMixin, actor
from webapp.roles import Role

for _model in (User, Group, TOTPDevice, AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(User)
class OperatorAdmin(RoleGateMixin, UserAdmin):
    """Operator accounts: only security admins; the save (fields, roles, permissions) is one action."""

    gate_role = Role.SECURITY_ADMIN

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # Deferred to save_related, which knows the roles: one audited action writes all of it.
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = form.cleaned_data
        do_save_operator(form.instance, actor(request), groups=data.get("groups"),
                         permissions=data.get("user_permissions"))
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        do_delete_operator(obj, actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for user in queryset:
            do_delete_operator(user, actor(request))

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        # Django's view sets the password; its audit row (without the password) commits with it.
        with transaction.atomic():
            user = self.get_object(request, unquote(id))
            before = user.password if user is not None else None
            response = super().user_change_password(request, id, form_url)
            now = User.objects.filter(pk=user.pk).values_list("password", flat=True).first() if user else None
            if user is not None and now != before:
                do_record_password_change(user, actor(request))
            return response


@admin.register(Group)
class RoleAdmin(RoleGateMixin, GroupAdmin):
    gate_role = Role.SECURITY_ADMIN

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        pass  # save_related saves the group with its permissions in one audited action

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        do_save_role(form.instance, actor(request), permissions=form.cleaned_data.get("permissions"))

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        do_delete_role(obj, actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for group in queryset:
            do_delete_role(group, actor(request))


@admin.register(TOTPDevice)
class OperatorTOTPDeviceAdmin(RoleGateMixin, TOTPDeviceAdmin):
    gate_role = Role.SECURITY_ADMIN

    def save_model(self, request: HttpRequest, obj: TOTPDevice, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            do_record_otp_device(obj.user, obj.name, actor(request))

    def delete_model(self, request: HttpRequest, obj: TOTPDevice) -> None:
        with transaction.atomic():
            do_record_otp_device(obj.user, obj.name, actor(request), removed=True)
            super().delete_model(request, obj)


@admin.register(AccessAttempt)
class LockoutAdmin(RoleGateMixin, AccessAttemptAdmin):
    """Failed-login counters; deleting one unlocks the account+address (security admins)."""

    gate_role = Role.SECURITY_ADMIN


@admin.register(AccessLog)
class LoginLogAdmin(RoleGateMixin, AccessLogAdmin):
    gate_role = Role.AUDITOR


@admin.register(AccessFailureLog)
class LoginFailureLogAdmin(RoleGateMixin, AccessFailureLogAdmin):
    gate_role = Role.AUDITOR
