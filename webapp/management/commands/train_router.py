"""manage.py train_router: train the intent router on the database's examples and announce the new version."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.actions.routing import (
    RoutingError,
    active_router_version,
    do_import_intent_examples,
    do_train_router,
)
from webapp.management.progress import progress


class Command(BaseCommand):
    help = ("Train the router on the enabled IntentExample rows (seeding the skills' examples when the table "
            "is empty), store the artefact in the database and make workers switch to it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-activate", action="store_true", help="store the version without activating it")
        parser.add_argument("--import", dest="import_file", default="",
                            help="first add examples from a JSON file of {text, intent} rows")
        parser.add_argument("--if-missing", action="store_true",
                            help="do nothing when a router is already active (first start of a deployment)")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = "manage.py train_router"
        active = active_router_version() if options["if_missing"] else None
        if active:
            self.stdout.write(f"router {active} is active; nothing to do (--if-missing)")
            return
        if options["import_file"]:
            with open(options["import_file"], encoding="utf-8") as fh:
                added = do_import_intent_examples(actor, json.load(fh))
            self.stdout.write(f"imported {added} example(s) from {options['import_file']}")
        try:
            # The bar counts the texts still to embed (none when they were embedded on write); fitting follows.
            with progress("training the router (embedding)", stream=self.stderr) as bar:
                model = do_train_router(actor, activate=not options["no_activate"], progress=bar.callback)
        except RoutingError as exc:
            raise CommandError(str(exc)) from exc
        val = (model.metrics.get("val") or {}).get("in_scope_accuracy")
        self.stdout.write(self.style.SUCCESS(
            f"router {model.version}: {model.n_examples} examples, {len(model.intents)} intents, "
            f"trained in {model.train_seconds:.1f} s, val in-scope accuracy {val}, "
            f"{'active' if model.activated_at else 'not activated'}"))
