"""`manage.py export_user STAFF_ID [--tenant T] [--output FILE]`: everything stored about a person, as JSON."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.actions.privacy import do_export_user
from webapp.management.progress import progress
from webapp.management.subject import actor_of, add_subject_arguments


class Command(BaseCommand):
    help = "Export every store's data about one user (profiles, messages, reminders, sessions, media...)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser, "export")
        parser.add_argument("--output", default="", help="write the JSON here instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = actor_of(options)
        with progress("exporting the stores", stream=self.stderr) as bar:
            data = do_export_user(options["tenant"], options["user_id"], actor=actor, progress=bar.callback)
        text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as out:
                out.write(text)
            self.stderr.write(f"exported to {options['output']}")
        else:
            self.stdout.write(text)
