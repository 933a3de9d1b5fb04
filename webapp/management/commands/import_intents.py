"""manage.py import_intents FILE: add training examples from a JSON file and embed them on write."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.actions.routing import do_embed_intent_examples, do_import_intent_examples
from webapp.management.progress import progress


class Command(BaseCommand):
    help = ("Add IntentExample rows from a JSON list of {text, intent} (rows already present are skipped), "
            "then embed the examples the training cache lacks, so train_router only fits the classifier.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--no-embed", action="store_true",
                            help="do not embed now (the next train_router embeds what is missing)")

    def handle(self, *args: Any, **options: Any) -> None:
        with open(options["file"], encoding="utf-8") as fh:
            added = do_import_intent_examples("manage.py import_intents", json.load(fh))
        self.stdout.write(self.style.SUCCESS(f"imported {added} example(s) from {options['file']}"))
        if not options["no_embed"]:
            with progress("embedding examples", stream=self.stderr) as bar:
                computed = do_embed_intent_examples(bar.callback)
            self.stdout.write(f"{computed} embedding(s) computed")
