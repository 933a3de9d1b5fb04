"""manage.py restore_audit_archive: verify the archive against the database (signatures, digests, chain); --load."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.actions.audit_archive import restore_and_verify
from webapp.archive_store import ArchiveError


class Command(BaseCommand):
    help = ("Read every archived audit part and checkpoint, verify them, and compare with the database; "
            "--load inserts the archived rows the database lacks (run as the owner: --database owner).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--load", action="store_true", help="insert archived rows missing from the database")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = restore_and_verify(load=options["load"], actor=f"manage.py:{getpass.getuser()}")
        except ArchiveError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{report.parts} part(s), {report.rows} archived row(s) checked; loaded {report.loaded}")
        for problem in report.problems:
            self.stderr.write(f"problem: {problem}")
        if report.missing_in_db:
            self.stderr.write(f"rows archived but missing from the database: {_ids(report.missing_in_db)}")
        if report.different_in_db:
            self.stderr.write(f"rows that differ from the archive: {_ids(report.different_in_db)}")
        if not report.ok:
            raise CommandError("the archive and the database do not agree")
        self.stdout.write(self.style.SUCCESS("archive verified; the database holds every archived row unchanged"))


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:20])) + (f" … ({len(ids)} in all)" if len(ids) > 20 else "")
