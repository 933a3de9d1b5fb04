"""manage.py verify_audit_chain: recompute the audit hash chain; exit 1 if it was tampered with."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.actions.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the insert-only, hash-chained audit log."

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"audit chain broken at row {report.broken_at} after {report.checked} good rows: "
                f"{report.reason}"
            )
        self.stdout.write(self.style.SUCCESS(f"audit chain intact: {report.checked} rows"))
