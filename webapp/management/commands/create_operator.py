"""manage.py create_operator: an operator account in one role (how the first security admin is made), audited."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.actions.operators import do_record_otp_device, do_save_operator
from webapp.roles import Role


class Command(BaseCommand):
    help = "Create (or move) an operator account into one role: system_admin, security_admin or auditor."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        parser.add_argument("--totp", action="store_true",
                            help="add a TOTP device and print its otpauth:// URL (needed to sign in in production)")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first() or User(username=options["username"])
        user.is_staff, user.is_superuser = True, False  # one role, and no superuser flag (三员分立)
        if user.pk is None:
            password = (sys.stdin.readline() if options["password_stdin"] else getpass.getpass()).strip()
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from exc
            user.set_password(password)
        try:
            do_save_operator(user, f"manage.py:{getpass.getuser()}", groups=[Group.objects.get(name=options["role"])])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(f"{user.username} is a {Role(options['role']).label}"))
        if options["totp"]:
            with transaction.atomic():
                device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
                do_record_otp_device(user, device.name, f"manage.py:{getpass.getuser()}")
            self.stdout.write(f"scan into an authenticator app: {device.config_url}")
