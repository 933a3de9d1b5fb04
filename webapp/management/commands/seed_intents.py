"""manage.py seed_intents: add the skills' shipped example utterances to the training data (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from webapp.actions.routing import do_seed_intent_examples


class Command(BaseCommand):
    help = "Seed IntentExample rows from every built-in skill's examples; existing rows are left alone."

    def handle(self, *args: Any, **options: Any) -> None:
        added = do_seed_intent_examples("manage.py seed_intents")
        self.stdout.write(self.style.SUCCESS(f"{added} example(s) added"))
