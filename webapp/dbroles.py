"""PostgreSQL roles: the application's group role may only INSERT and SELECT audit rows; the owner migrates.

The owner (DATABASE_OWNER_URL, `manage.py migrate --database owner`) owns every table and runs the
migrations. The application logs in as DATABASE_URL's user, a member of DATABASE_APP_ROLE
(`dtbot_app`), which may read and write the application's tables but on `webapp_auditlog` only
SELECT and INSERT: no UPDATE, DELETE or TRUNCATE, and, not being the owner, it cannot disable the
table's triggers either. The grants are in migration 0002 and re-applied after every migrate
(tables of later migrations and of other apps get the same rights, the audit log never more).
"""

from __future__ import annotations

import logging
from typing import Any

import dj_database_url
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg2 import sql

from conf.settings import get_settings

log = logging.getLogger(__name__)

AUDIT_TABLE = "webapp_auditlog"
# Read-only for the application: which migrations ran.
READ_ONLY_TABLES = ("django_migrations",)


def app_role() -> str:
    return get_settings().database_app_role


def create_role_sql(role: str) -> str:
    """The group role, once per cluster (concurrent creators, e.g. parallel test databases, race)."""
    return f"""
DO $$ BEGIN
    CREATE ROLE {role} NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
"""


def grants_sql(role: str) -> str:
    """The application's rights in this database (idempotent)."""
    read_only = ", ".join(READ_ONLY_TABLES)
    return f"""
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role};
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {AUDIT_TABLE} FROM {role};
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {read_only} FROM {role};
"""


def apply_grants(connection: BaseDatabaseWrapper) -> None:
    """Create the role if needed and (re)apply its grants on every table there is now."""
    if connection.vendor != "postgresql":
        return
    role = app_role()
    with connection.cursor() as cursor:
        cursor.execute(create_role_sql(role))
        cursor.execute(grants_sql(role))


def ensure_app_login(connection: BaseDatabaseWrapper, app_url: str) -> str:
    """Make DATABASE_URL's user a login in the application role (password from the URL), run
    as the owner after migrate; returns what was done (nothing when the app logs in as the owner)."""
    target: dict[str, Any] = dict(dj_database_url.parse(app_url))
    user, password = str(target.get("USER") or ""), str(target.get("PASSWORD") or "")
    owner = str(connection.settings_dict.get("USER") or "")
    if not user or user == owner:
        log.warning("DATABASE_URL logs in as the owner %r: the audit log's INSERT/SELECT-only role is "
                    "not in force (set DATABASE_OWNER_URL and a separate DATABASE_URL user)", owner)
        return "app logs in as the owner"
    role = app_role()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("""
DO $$ BEGIN
    CREATE ROLE {} LOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;""").format(sql.Identifier(user)))
        if password:
            cursor.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(user)), [password])
        cursor.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(user)))
    return f"{user} is a login of {role}"


def table_privileges(connection: BaseDatabaseWrapper, table: str, role: str | None = None) -> set[str]:
    """The privileges `role` holds on `table` (SELECT, INSERT, ...), as PostgreSQL reports them."""
    kinds = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::text[]) AS k WHERE has_table_privilege(%s, %s, k)",
            [list(kinds), role or app_role(), table],
        )
        return {row[0] for row in cursor.fetchall()}
