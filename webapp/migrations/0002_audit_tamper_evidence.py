"""Tamper evidence for the audit log (issue 14).

- `hash_scheme`: rows written so far keep their plain SHA-256 ("sha256", verified as the chain's
  prefix only); new rows are HMAC-SHA256 keyed by AUDIT_HMAC_KEY, which never enters the database.
- TRUNCATE is refused like UPDATE and DELETE (a statement trigger). A test runner that flushes
  tables between tests, as the owner, sets `dtbot.allow_audit_truncate = on` on its connections;
  the application role has no TRUNCATE privilege at all, so the setting is nothing to it.
- The application role (DATABASE_APP_ROLE, `dtbot_app`): read/write on the application's tables,
  SELECT and INSERT only on the audit log, read-only on django_migrations. Re-applied after every
  migrate by webapp.apps (tables created later get the same rights; see webapp/dbroles.py).
"""

from django.db import migrations, models

from webapp import dbroles

INSERT_ONLY_SQL = """
CREATE OR REPLACE FUNCTION webapp_auditlog_insert_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('dtbot.allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'webapp_auditlog is insert-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER webapp_auditlog_no_truncate
    BEFORE TRUNCATE ON webapp_auditlog
    FOR EACH STATEMENT EXECUTE FUNCTION webapp_auditlog_insert_only();
"""

DROP_TRUNCATE_SQL = "DROP TRIGGER IF EXISTS webapp_auditlog_no_truncate ON webapp_auditlog;"

ROLE = dbroles.app_role()

# The application role and its rights; the grants it ends with are what tests/webapp/test_dbroles.py proves.
GRANTS_SQL = dbroles.create_role_sql(ROLE) + dbroles.grants_sql(ROLE)

REVOKE_SQL = f"""
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {ROLE};
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE};
REVOKE USAGE ON SCHEMA public FROM {ROLE};
"""


class Migration(migrations.Migration):

    dependencies = [
        ('webapp', '0001_initial_squashed'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='deadletter',
            options={'ordering': ['-created_at'], 'permissions': [('replay_deadletter', 'Can replay dead letters')]},
        ),
        # Existing rows were hashed without a key: they say so.
        migrations.AddField(
            model_name='auditlog',
            name='hash_scheme',
            field=models.CharField(default='sha256', max_length=16),
        ),
        migrations.AlterField(
            model_name='auditlog',
            name='hash_scheme',
            field=models.CharField(default='hmac-sha256', max_length=16),
        ),
        migrations.RunSQL(INSERT_ONLY_SQL, DROP_TRUNCATE_SQL),
        migrations.RunSQL(GRANTS_SQL, REVOKE_SQL),
    ]
