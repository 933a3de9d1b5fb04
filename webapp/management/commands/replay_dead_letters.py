"""`manage.py replay_dead_letters`: re-run dead-lettered messages from their failed stage."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.actions.deadletters import describe, do_replay_dead_letter
from webapp.management.progress import progress
from webapp.models import DeadLetter


class Command(BaseCommand):
    help = "Replay dead letters (by --id, or --all pending ones) from the stage that failed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", type=int, action="append", dest="ids", default=[],
                            help="dead letter id (repeatable)")
        parser.add_argument("--all", action="store_true",
                            help="every dead letter not replayed yet")
        parser.add_argument("--dry-run", action="store_true", help="list, do not replay")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = options["ids"]
        if not ids and not options["all"]:
            raise CommandError("give --id N (repeatable) or --all")
        letters = DeadLetter.objects.order_by("pk")
        letters = letters.filter(pk__in=ids) if ids else letters.filter(replayed_at__isnull=True)
        missing = set(ids) - set(letters.values_list("pk", flat=True))
        if missing:
            raise CommandError(f"no dead letter with id {sorted(missing)}")
        count = 0
        with progress("replaying dead letters", total=letters.count(), stream=self.stderr) as bar:
            for letter in letters.iterator():
                if options["dry_run"]:
                    self.stdout.write(f"would replay {describe(letter)}: {letter.error[:100]}")
                else:
                    do_replay_dead_letter(letter, actor=f"manage.py:{getpass.getuser()}")
                    self.stdout.write(f"replayed {describe(letter)}")
                count += 1
                bar.advance()
        verb = "would replay" if options["dry_run"] else "replayed"
        self.stdout.write(self.style.SUCCESS(f"{verb} {count} dead letter(s)"))
