"""manage.py verify_audit_chain: recompute the HMAC chain, hold it to the archived checkpoint; exit 1 if broken."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.actions.audit_archive import do_verify_audit_chain


class Command(BaseCommand):
    help = "Verify the insert-only, HMAC-chained audit log (and that it still reaches the archived checkpoint)."

    def handle(self, *args: Any, **options: Any) -> None:
        report = do_verify_audit_chain(actor=f"manage.py:{getpass.getuser()}")
        if not report.ok:
            where = f"broken at row {report.broken_at}" if report.broken_at else "broken"
            raise CommandError(f"audit chain {where} after {report.checked} good rows: {report.reason}")
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.checked} rows, head #{report.head_id}"))
