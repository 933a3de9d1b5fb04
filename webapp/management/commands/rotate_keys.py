"""manage.py rotate_keys: re-encrypt every stored secret under the newest FIELD_ENCRYPTION_KEYS key."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.actions.keys import count_rows, do_rotate_keys
from webapp.management.progress import progress


class Command(BaseCommand):
    help = ("Re-encrypt remote-skill tokens and secret skill-config fields (settings and their versions) under the "
            "first key of FIELD_ENCRYPTION_KEYS; the old keys keep decrypting meanwhile. Drop an old key only "
            "after this succeeded.")

    def handle(self, *args: Any, **options: Any) -> None:
        with progress("re-encrypting secrets", total=count_rows(), stream=self.stderr) as bar:
            report = do_rotate_keys(actor=f"manage.py:{getpass.getuser()}", advance=bar.advance)
        if report.failed:
            raise CommandError(f"{len(report.failed)} value(s) no listed key opens (keep the old key): "
                               + ", ".join(report.failed[:20]))
        self.stdout.write(self.style.SUCCESS(
            f"secrets re-encrypted under the newest key: {report.rotated} rotated, {report.sealed} sealed"))
