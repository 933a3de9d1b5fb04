"""The application's database role may only INSERT and SELECT audit rows; everything else the app does still works.

The test runner connects as the owner; these tests act as the application role with SET ROLE, the
way DATABASE_URL's login (a member of it) would.
"""

from __future__ import annotations

import contextlib
import uuid

import psycopg2
import pytest
from django.db import DatabaseError, connection, transaction

from webapp import dbroles
from webapp.actions.audit import record_audit, verify_chain
from webapp.actions.deadletters import do_dead_letter
from webapp.actions.records import MessageStatus, do_mark_status
from webapp.models import AuditLog, MessageRecord
from webapp.models.audit import AuditAction

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def as_app_role():
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {dbroles.app_role()}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def test_the_app_role_holds_only_select_and_insert_on_the_audit_log():
    assert dbroles.table_privileges(connection, "webapp_auditlog") == {"SELECT", "INSERT"}
    assert dbroles.table_privileges(connection, "django_migrations") == {"SELECT"}
    assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= dbroles.table_privileges(connection, "webapp_messagerecord")
    assert "TRUNCATE" not in dbroles.table_privileges(connection, "webapp_messagerecord")


def test_the_migration_shows_the_grants():
    from importlib import import_module

    migration = import_module("webapp.migrations.0002_audit_tamper_evidence")
    assert "REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON webapp_auditlog" in migration.GRANTS_SQL
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES" in migration.GRANTS_SQL


@pytest.mark.parametrize("statement", [
    "UPDATE webapp_auditlog SET actor = 'mallory'",
    "DELETE FROM webapp_auditlog",
    "TRUNCATE webapp_auditlog",
    "ALTER TABLE webapp_auditlog DISABLE TRIGGER USER",
    "DROP TABLE webapp_auditlog",
])
def test_the_app_role_cannot_change_or_remove_audit_rows(statement):
    record_audit(actor="bob", action=AuditAction.ADMIN_SETTING_UPDATE, after={"v": 1})
    with as_app_role(), pytest.raises(DatabaseError, match=r"permission denied|must be owner"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL dtbot.allow_audit_truncate = on")  # no help without the privilege
            cursor.execute(statement)
    assert AuditLog.objects.count() == 1 and verify_chain().ok


def test_the_app_role_writes_audit_rows_and_runs_the_pipelines_actions():
    MessageRecord.objects.create(msg_id="m1", tenant_id="t", status=MessageStatus.PROCESSING)
    MessageRecord.objects.create(msg_id="m2", tenant_id="t", status=MessageStatus.PROCESSING)
    with as_app_role():
        record_audit(actor="bob", action=AuditAction.ADMIN_SETTING_UPDATE, after={"v": 1})
        do_mark_status("m1", MessageStatus.REPLIED, channel="webhook", skill="echo",
                       recipients=[], personal_data=[])
        try:
            raise ValueError("boom")
        except ValueError:
            do_dead_letter("m2", "deliver", {"msg_id": "m2"}, "poison: boom")
    actions = list(AuditLog.objects.values_list("action", flat=True))
    assert actions == [AuditAction.ADMIN_SETTING_UPDATE, AuditAction.MESSAGE_DATA_FLOW, AuditAction.PIPELINE_EXCEPTION]
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_login_of_the_app_role_is_made_from_database_url():
    """After `migrate --database owner`, DATABASE_URL's user logs in as a member of the app role."""
    name = f"dtbot_test_{uuid.uuid4().hex[:8]}"
    url = f"postgres://{name}:s3cret-Pw@127.0.0.1:5432/{connection.settings_dict['NAME']}"
    try:
        assert dbroles.ensure_app_login(connection, url) == f"{name} is a login of {dbroles.app_role()}"
        dbroles.ensure_app_login(connection, url)  # idempotent
        record_audit(actor="bob", action=AuditAction.ADMIN_SETTING_UPDATE, after={"v": 1})
        with psycopg2.connect(host="127.0.0.1", port=5432, user=name, password="s3cret-Pw",
                              dbname=connection.settings_dict["NAME"]) as app, app.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM webapp_auditlog")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cursor.execute("DELETE FROM webapp_auditlog")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP OWNED BY {name}; DROP ROLE IF EXISTS {name}")


def test_the_app_logging_in_as_the_owner_is_said_plainly(caplog):
    owner = connection.settings_dict["USER"]
    assert dbroles.ensure_app_login(connection, f"postgres://{owner}@127.0.0.1/x") == "app logs in as the owner"
    assert "not in force" in caplog.text


@pytest.mark.slow
def test_migrating_as_the_owner_gives_the_app_its_login_and_nothing_more():
    """The deployment's way: `migrate --database owner`, then every role runs as DATABASE_URL's user."""
    import subprocess
    import sys

    from testkit.processes import ROOT, worker_env

    db = connection.settings_dict
    name, login = f"test_dtbot_own_{uuid.uuid4().hex[:8]}", f"dtbot_app_{uuid.uuid4().hex[:8]}"
    owner_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    app_url = f"postgres://{login}:App-Pw-1@{db['HOST']}:{db['PORT']}/{name}"
    admin = psycopg2.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    env = worker_env(None, DATABASE_URL=app_url, DATABASE_OWNER_URL=owner_url)
    try:
        migrated = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "--database", "owner"],
                                  cwd=ROOT, env=env, text=True, capture_output=True, timeout=180)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        verified = subprocess.run([sys.executable, "manage.py", "verify_audit_chain"], cwd=ROOT, env=env,
                                  text=True, capture_output=True, timeout=120)
        assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr  # writes a row as the app
        with psycopg2.connect(app_url) as app, app.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM auth_group")
            assert cursor.fetchone() == (3,)  # the roles, made by the app after the owner migrated
            for statement in ("DELETE FROM webapp_auditlog", "TRUNCATE webapp_auditlog"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cursor.execute(statement)
                app.rollback()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.cursor().execute(f"DROP ROLE IF EXISTS {login}")
        admin.close()
