"""`manage.py erase_user STAFF_ID [--tenant T] --yes`: delete or anonymise a person's data in every store."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.actions.privacy import do_erase_user
from webapp.management.subject import actor_of, add_subject_arguments


class Command(BaseCommand):
    help = "Erase one user's data everywhere (audited; the audit row holds counts, no personal content)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser, "erasure")
        parser.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["yes"]:
            raise CommandError("erasure cannot be undone; run again with --yes (export_user first?)")
        actor = actor_of(options)
        counts = do_erase_user(options["tenant"], options["user_id"], actor=actor)
        self.stdout.write(json.dumps(counts, indent=2))
