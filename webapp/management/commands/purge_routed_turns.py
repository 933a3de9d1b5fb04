"""manage.py purge_routed_turns: delete routed turns (user text) older than ROUTED_TURN_RETENTION_DAYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.actions.routing import do_purge_routed_turns


class Command(BaseCommand):
    help = "Delete RoutedTurn rows past the retention period (run daily, e.g. from cron or beat)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="override ROUTED_TURN_RETENTION_DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = do_purge_routed_turns(options["days"])
        self.stdout.write(self.style.SUCCESS(f"{deleted} routed turn(s) deleted"))
