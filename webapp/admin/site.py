"""The admin site: TOTP second factor when required (always in production mode), audited own-password changes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from webapp.actions.operators import do_record_password_change


def otp_required() -> bool:
    return bool(getattr(settings, "ADMIN_REQUIRE_OTP", False))


class SecureAdminSite(admin.AdminSite):
    """Django's admin site, plus: with ADMIN_REQUIRE_OTP a session counts only once a TOTP device
    verified it (django-otp's rule, checked per request so settings decide, not import order)."""

    def has_permission(self, request: HttpRequest) -> bool:
        allowed = super().has_permission(request)
        if allowed and otp_required():
            return bool(request.user.is_verified())  # type: ignore[union-attr]  # OTPMiddleware adds it
        return allowed

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The same values in every request of a process: the setting does not change at run time.
        self.login_form = OTPAdminAuthenticationForm if otp_required() else None
        self.login_template = OTPAdminSite.login_template if otp_required() else None
        return super().login(request, extra_context)

    def password_change(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        pk = request.user.pk or 0
        with transaction.atomic():
            before = User.objects.filter(pk=pk).values_list("password", flat=True).first()
            response = super().password_change(request, extra_context)
            user = User.objects.filter(pk=pk).first()
            if user is not None and user.password != before:
                do_record_password_change(user, user.get_username())
            return response


def install() -> None:
    """Give the default site (what every ModelAdmin registered on) this class."""
    admin.site.__class__ = SecureAdminSite
