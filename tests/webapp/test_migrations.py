"""One squashed migration history: the models match it, the audit trigger is in it, databases migrated
with the old chain carry on, and one stopped part-way through it is told how to continue."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader

from testkit.processes import ROOT, worker_env
from webapp.checks import SQUASHED, partly_squashed_history

OLD_CHAIN = ["0001_initial", "0002_documents_reminders", "0003_audit_log", "0004_platform_skills_routing",
             "0004_gateway_profile_timezone", "0005_merge_platform_gateway", "0004_message_channel_card",
             "0006_gateway_merge_leaves"]


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)  # exits 1 on a missing migration


def test_the_history_starts_with_one_migration_that_replaces_the_old_chain_and_keeps_the_trigger():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    names = sorted(name for app, name in loader.disk_migrations if app == "webapp")
    assert names[0] == SQUASHED
    # Migrations after the squash are ordinary ones, in one line after it.
    assert all(not loader.disk_migrations[("webapp", n)].replaces for n in names[1:])
    assert len(loader.graph.leaf_nodes("webapp")) == 1
    squashed = loader.disk_migrations[("webapp", SQUASHED)]
    assert [name for _, name in squashed.replaces] == OLD_CHAIN
    [trigger] = [op for op in squashed.operations if isinstance(op, migrations.RunSQL)]
    assert "BEFORE UPDATE OR DELETE ON webapp_auditlog" in trigger.sql


@pytest.mark.django_db
@pytest.mark.parametrize(("recorded", "error"), [
    (OLD_CHAIN, False), (OLD_CHAIN[:3], True), ([SQUASHED], False), ([], False)])
def test_the_check_refuses_only_a_database_part_way_through_the_old_chain(recorded, error):
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'webapp'")
        for name in recorded:
            cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('webapp', %s, now())", [name])
    found = partly_squashed_history(databases=["default"])
    assert [e.id for e in found] == (["webapp.E001"] if error else [])
    if error:
        assert "0003_audit_log" in found[0].msg and "before the squash" in str(found[0].hint)


@pytest.fixture
def scratch_database():
    """An empty database of its own on the test server, dropped afterwards."""
    db = connection.settings_dict
    name = f"test_dtbot_mig_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    try:
        yield url
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def migrate(url: str, *target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", *target], cwd=ROOT, text=True,
                          env=worker_env(DATABASE_URL=url), capture_output=True, timeout=120)


def sql(url: str, statement: str, *params: object) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


@pytest.mark.slow
def test_migrate_builds_a_fresh_database_and_carries_an_old_one_on(scratch_database):
    url = scratch_database
    assert migrate(url).returncode == 0
    assert sql(url, "SELECT tgname FROM pg_trigger WHERE tgname = 'webapp_auditlog_no_update_delete'")
    # The same schema as migrated with the old chain (which ended where the squash ends), recorded as
    # that chain records itself: only the migrations after the squash run.
    assert migrate(url, "webapp", SQUASHED).returncode == 0
    sql(url, "DELETE FROM django_migrations WHERE app = 'webapp'")
    for name in OLD_CHAIN:
        sql(url, "INSERT INTO django_migrations (app, name, applied) VALUES ('webapp', %s, now())", name)
    carried = migrate(url)
    assert carried.returncode == 0, carried.stdout + carried.stderr
    applied = [line.split("Applying ")[1].split("...")[0] for line in carried.stdout.splitlines() if "Applying" in line]
    assert applied and not any(SQUASHED in name for name in applied), carried.stdout
    assert sql(url, "SELECT 1 FROM django_migrations WHERE app = 'webapp' AND name = %s", SQUASHED)
    # Part-way through the old chain: refused, with the way forward.
    sql(url, "DELETE FROM django_migrations WHERE app = 'webapp' AND name NOT IN %s", tuple(OLD_CHAIN[:3]))
    stopped = migrate(url)
    assert stopped.returncode != 0 and "webapp.E001" in stopped.stderr and "before the squash" in stopped.stderr
