"""manage.py seed_intents: add the skills' shipped example utterances to the training data (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.actions.routing import do_embed_intent_examples, do_seed_intent_examples
from webapp.management.progress import progress


class Command(BaseCommand):
    help = ("Seed IntentExample rows from every built-in skill's examples (existing rows are left alone), "
            "then embed the examples the training cache lacks, so train_router only fits the classifier.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-embed", action="store_true",
                            help="do not embed now (the next train_router embeds what is missing)")

    def handle(self, *args: Any, **options: Any) -> None:
        added = do_seed_intent_examples("manage.py seed_intents")
        self.stdout.write(self.style.SUCCESS(f"{added} example(s) added"))
        if not options["no_embed"]:
            with progress("embedding examples", stream=self.stderr) as bar:
                computed = do_embed_intent_examples(bar.callback)
            self.stdout.write(f"{computed} embedding(s) computed")
