"""Django app config of the webapp."""

from django.apps import AppConfig


class WebappConfig(AppConfig):
    name = "webapp"
    verbose_name = "DingTalk assistant"
    default_auto_field = "django.db.models.BigAutoField"
