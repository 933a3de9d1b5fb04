"""Django app config of the webapp."""

from django.apps import AppConfig


class WebappConfig(AppConfig):
    name = "webapp"
    verbose_name = "DingTalk assistant"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from webapp import (
            checks,  # noqa: F401  (registers the migration-history check)
            signals,  # (the audit's sign-in receivers)
        )

        signals.connect(self)
