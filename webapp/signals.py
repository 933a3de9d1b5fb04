"""Signal receivers of the webapp: sign-in events into the audit log, and what every migrate re-applies."""

from __future__ import annotations

import logging
from typing import Any

from axes.signals import user_locked_out
from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import connections
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from conf.settings import get_settings
from webapp import dbroles
from webapp.actions import operators

log = logging.getLogger(__name__)


@receiver(user_logged_in, dispatch_uid="dtbot-audit-login")
def _logged_in(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    operators.do_record_login(user, request)


@receiver(user_logged_out, dispatch_uid="dtbot-audit-logout")
def _logged_out(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    operators.do_record_logout(user, request)


@receiver(user_login_failed, dispatch_uid="dtbot-audit-login-failed")
def _login_failed(sender: Any, credentials: dict[str, Any] | None = None, request: Any = None, **_: Any) -> None:
    # Django has already masked the password in `credentials`; only the name is kept.
    operators.do_record_login_failed(str((credentials or {}).get("username") or ""), request)


@receiver(user_locked_out, dispatch_uid="dtbot-audit-locked-out")
def _locked_out(sender: Any, request: Any = None, username: str = "", ip_address: str = "", **_: Any) -> None:
    operators.do_record_locked_out(str(username or ""), str(ip_address or ""))


def after_migrate(sender: AppConfig, using: str = "default", **_: Any) -> None:
    """After the webapp's migrations (every `migrate`, and a test database's flush): the app role's
    grants on every table there is now, the three roles' permissions, and the app's login."""
    connection = connections[using]
    dbroles.apply_grants(connection)
    if using != "default":  # migrated as the owner: DATABASE_URL's user joins the app role (first)
        log.info("%s", dbroles.ensure_app_login(connection, get_settings().database_url))
    operators.do_sync_roles()  # as the application (its audit row too)


def connect(app: AppConfig) -> None:
    post_migrate.connect(after_migrate, sender=app, dispatch_uid="dtbot-after-migrate")
