"""Django set-up for processes outside the web role that call these actions (workers, scripts)."""

from __future__ import annotations

import os


def setup_django() -> None:
    """Configure Django with the webapp's settings (idempotent: a second call changes nothing)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
