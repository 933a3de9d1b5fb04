"""manage.py archive_audit: export the audit rows since the last checkpoint to the archive (what beat runs daily)."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.actions.audit_archive import do_archive_audit
from webapp.archive_store import ArchiveError


class Command(BaseCommand):
    help = "Archive new audit rows (gzip JSON lines) and a signed chain checkpoint to S3-compatible storage."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = do_archive_audit(actor=f"manage.py:{getpass.getuser()}")
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result, ensure_ascii=False))
