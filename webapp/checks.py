"""System check: a database part-way through the migrations that the squashed initial migration
replaces cannot continue with this code (Django would silently see no webapp migrations at all)."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

SQUASHED = "0001_initial_squashed"
PATH = ("migrate it to webapp 0006_gateway_merge_leaves with the code from before the squash "
        "(git log -- webapp/migrations), then run migrate with this code")


@checks.register(checks.Tags.database)
def partly_squashed_history(app_configs: Any = None, databases: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """Runs in `migrate` (and `check --database`): an Error names the way forward."""
    errors: list[checks.CheckMessage] = []
    for alias in databases or ():
        try:
            recorder = MigrationRecorder(connections[alias])
            if not recorder.has_table():
                continue
            applied = {name for app, name in recorder.applied_migrations() if app == "webapp"}
        except DatabaseError:
            continue  # unreachable database: migrate itself reports that
        replaced = {name for _, name in MigrationLoader(None, ignore_no_migrations=True)
                    .disk_migrations[("webapp", SQUASHED)].replaces}
        done = applied & replaced
        if done and done != replaced and SQUASHED not in applied:
            errors.append(checks.Error(
                f"database {alias!r} has only part of the webapp migrations squashed into {SQUASHED} "
                f"(applied: {', '.join(sorted(done))})",
                hint=PATH, id="webapp.E001",
            ))
    return errors
