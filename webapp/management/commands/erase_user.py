"""`manage.py erase_user STAFF_ID [--tenant T] --yes`: delete or anonymise a person's data in every store."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.actions.privacy import do_erase_user


class Command(BaseCommand):
    help = "Erase one user's data everywhere (audited; the audit row holds counts, no personal content)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user_id", help="DingTalk staff id (or sender id for people outside the org)")
        parser.add_argument("--tenant", default="", help="tenant (corp) id; default: every tenant")
        parser.add_argument("--yes", action="store_true", help="confirm: this cannot be undone")
        parser.add_argument("--actor", default="", help="who runs the erasure (audit); default: OS user")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["yes"]:
            raise CommandError("erasure cannot be undone; run again with --yes (export_user first?)")
        actor = options["actor"] or f"manage.py:{getpass.getuser()}"
        counts = do_erase_user(options["tenant"], options["user_id"], actor=actor)
        self.stdout.write(json.dumps(counts, indent=2))
