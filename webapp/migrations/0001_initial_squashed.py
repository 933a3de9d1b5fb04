"""The webapp's schema: the eight migrations up to 0006_gateway_merge_leaves squashed into one.

`replaces` lets a database migrated with the old chain (up to 0006) continue: Django records this
migration as applied without running it. A fresh database runs it. A database part-way through the
old chain (rare: only a checkout between those commits) first migrates to 0006 with the code from
before the squash, then with this. The old files are gone; once every database has recorded this
migration, `replaces` can go too.
"""

import datetime

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import webapp.models.documents

# The audit log is insert-only in the database too: the ORM guard can be bypassed, this cannot
# (short of disabling the trigger, which needs the table owner).
INSERT_ONLY_SQL = """
CREATE OR REPLACE FUNCTION webapp_auditlog_insert_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'webapp_auditlog is insert-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER webapp_auditlog_no_update_delete
    BEFORE UPDATE OR DELETE ON webapp_auditlog
    FOR EACH ROW EXECUTE FUNCTION webapp_auditlog_insert_only();
"""

DROP_INSERT_ONLY_SQL = """
DROP TRIGGER IF EXISTS webapp_auditlog_no_update_delete ON webapp_auditlog;
DROP FUNCTION IF EXISTS webapp_auditlog_insert_only();
"""

class Migration(migrations.Migration):

    replaces = [
        ('webapp', '0001_initial'),
        ('webapp', '0002_documents_reminders'),
        ('webapp', '0003_audit_log'),
        ('webapp', '0004_platform_skills_routing'),
        ('webapp', '0004_gateway_profile_timezone'),
        ('webapp', '0005_merge_platform_gateway'),
        ('webapp', '0004_message_channel_card'),
        ('webapp', '0006_gateway_merge_leaves'),
    ]

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='DeadLetter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('msg_id', models.CharField(db_index=True, max_length=191)),
                ('stage', models.CharField(max_length=32)),
                ('payload', models.JSONField()),
                ('error', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('replayed_at', models.DateTimeField(blank=True, null=True)),
                ('replay_count', models.PositiveIntegerField(default=0)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='UserProfile',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tenant_id', models.CharField(db_index=True, max_length=128)),
                ('staff_id', models.CharField(blank=True, default='', max_length=128)),
                ('sender_id', models.CharField(blank=True, default='', max_length=256)),
                ('nick', models.CharField(blank=True, default='', max_length=256)),
                ('department', models.CharField(blank=True, default='', max_length=256)),
                ('roles', models.JSONField(blank=True, default=list)),
                ('locale', models.CharField(default='zh-CN', max_length=16)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('timezone', models.CharField(blank=True, default='', help_text='IANA zone, e.g. "Asia/Shanghai"; empty: the skill default', max_length=64)),
            ],
            options={
                'constraints': [models.UniqueConstraint(condition=models.Q(('staff_id', ''), _negated=True), fields=('tenant_id', 'staff_id'), name='uniq_profile_staff_id'), models.UniqueConstraint(condition=models.Q(('staff_id', '')), fields=('tenant_id', 'sender_id'), name='uniq_profile_sender_id_without_staff_id')],
            },
        ),
        migrations.CreateModel(
            name='MessageRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('msg_id', models.CharField(max_length=191, unique=True)),
                ('tenant_id', models.CharField(db_index=True, max_length=128)),
                ('conversation_id', models.CharField(blank=True, default='', max_length=256)),
                ('conversation_type', models.CharField(blank=True, default='', max_length=8)),
                ('msgtype', models.CharField(blank=True, default='', max_length=32)),
                ('skill', models.CharField(blank=True, default='', max_length=64)),
                ('intent', models.CharField(blank=True, default='', max_length=128)),
                ('status', models.CharField(choices=[('received', 'Received'), ('processing', 'Processing'), ('replied', 'Replied'), ('duplicate', 'Duplicate'), ('failed', 'Failed'), ('dead', 'Dead'), ('delivery_unknown', 'Delivery Unknown')], db_index=True, default='received', max_length=24)),
                ('claimed_by', models.CharField(blank=True, default='', max_length=64)),
                ('duplicate_count', models.PositiveIntegerField(default=0)),
                ('channel', models.CharField(blank=True, choices=[('webhook', 'Webhook'), ('openapi', 'Openapi'), ('card', 'Card')], default='', max_length=16)),
                ('error', models.TextField(blank=True, default='')),
                ('received_at', models.DateTimeField(blank=True, null=True)),
                ('acked_at', models.DateTimeField(blank=True, null=True)),
                ('preprocessed_at', models.DateTimeField(blank=True, null=True)),
                ('skill_done_at', models.DateTimeField(blank=True, null=True)),
                ('postprocessed_at', models.DateTimeField(blank=True, null=True)),
                ('replied_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='messages', to='webapp.userprofile')),
            ],
            options={
                'indexes': [models.Index(fields=['tenant_id', 'conversation_id', '-created_at'], name='webapp_mess_tenant__d3ee4e_idx')],
            },
        ),
        migrations.CreateModel(
            name='DocumentCollection',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True)),
                ('departments', models.JSONField(blank=True, default=list, help_text='DingTalk department ids allowed to search this collection, e.g. ["1001"]; [] = everyone', validators=[webapp.models.documents._validate_departments])),
                ('description', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='Document',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('title', models.CharField(max_length=200)),
                ('file', models.FileField(storage=webapp.models.documents.document_storage, upload_to='%Y/%m/', validators=[django.core.validators.FileExtensionValidator(['txt', 'md', 'markdown', 'pdf', 'docx'])])),
                ('sha256', models.CharField(blank=True, db_index=True, default='', max_length=64)),
                ('status', models.CharField(choices=[('pending', 'pending'), ('ready', 'ready'), ('duplicate', 'duplicate (same content already in the collection)'), ('failed', 'failed')], default='pending', max_length=16)),
                ('n_chunks', models.PositiveIntegerField(default=0)),
                ('error', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('ingested_at', models.DateTimeField(blank=True, null=True)),
                ('uploaded_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('collection', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='documents', to='webapp.documentcollection')),
            ],
            options={
                'ordering': ['-updated_at'],
            },
        ),
        migrations.CreateModel(
            name='Reminder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tenant_id', models.CharField(max_length=128)),
                ('user_id', models.CharField(help_text='DingTalk staff id (the one-to-one send target)', max_length=128)),
                ('conversation_id', models.CharField(blank=True, default='', max_length=256)),
                ('conversation_type', models.CharField(blank=True, default='1', max_length=4)),
                ('title', models.CharField(max_length=200)),
                ('event_at', models.DateTimeField(help_text='the next occurrence of the event')),
                ('fire_at', models.DateTimeField()),
                ('reminder_offset', models.DurationField(default=datetime.timedelta(0))),
                ('rrule', models.CharField(blank=True, default='', help_text='RFC 5545 RRULE body; empty: once', max_length=200)),
                ('timezone', models.CharField(default='Asia/Shanghai', max_length=64)),
                ('lang', models.CharField(default='zh', max_length=8)),
                ('status', models.CharField(choices=[('pending', 'pending'), ('fired', 'fired'), ('cancelled', 'cancelled')], default='pending', max_length=16)),
                ('occurrence', models.PositiveIntegerField(default=0, help_text='occurrences fired so far')),
                ('source_key', models.CharField(help_text='idempotency key of the confirm button', max_length=200, unique=True)),
                ('fired_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'ordering': ['fire_at'],
                'indexes': [models.Index(fields=['status', 'fire_at'], name='reminder_due'), models.Index(fields=['tenant_id', 'user_id', 'status'], name='reminder_owner')],
            },
        ),
        migrations.CreateModel(
            name='ReminderFiring',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('occurrence_at', models.DateTimeField()),
                ('fired_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('error', models.TextField(blank=True, default='')),
                ('reminder', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='firings', to='webapp.reminder')),
            ],
            options={
                'ordering': ['-fired_at'],
                'indexes': [models.Index(fields=['delivered_at', 'fired_at'], name='reminder_firing_undelivered')],
                'constraints': [models.UniqueConstraint(fields=('reminder', 'occurrence_at'), name='reminder_fires_once_per_occurrence')],
            },
        ),
        migrations.CreateModel(
            name='AuditLog',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True)),
                ('actor', models.CharField(help_text="who: admin username, 'system', or a user id", max_length=256)),
                ('action', models.CharField(db_index=True, max_length=128)),
                ('tenant_id', models.CharField(blank=True, db_index=True, default='', max_length=128)),
                ('target_type', models.CharField(blank=True, default='', max_length=128)),
                ('target_id', models.CharField(blank=True, db_index=True, default='', max_length=256)),
                ('before', models.JSONField(blank=True, null=True)),
                ('after', models.JSONField(blank=True, null=True)),
                ('detail', models.JSONField(blank=True, default=dict)),
                ('prev_hash', models.CharField(max_length=64)),
                ('entry_hash', models.CharField(max_length=64, unique=True)),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='AdminSetting',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=128, unique=True)),
                ('value', models.JSONField(blank=True, null=True)),
                ('version', models.PositiveIntegerField(default=0, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('updated_by', models.CharField(blank=True, default='', editable=False, max_length=256)),
            ],
            options={
                'ordering': ['key'],
            },
        ),
        migrations.CreateModel(
            name='RemoteSkill',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.SlugField(max_length=64, unique=True)),
                ('url', models.CharField(help_text='http(s) URL the turn is POSTed to', max_length=500)),
                ('intents', models.JSONField(default=list, help_text='The intents it answers, e.g. ["it.ticket"]')),
                ('description', models.TextField(blank=True, default='', help_text='Help text shown to users')),
                ('timeout_seconds', models.FloatField(default=10.0, validators=[django.core.validators.MinValueValidator(0.1)])),
                ('token_encrypted', models.TextField(blank=True, default='', editable=False, help_text='Bearer token, Fernet-encrypted with FIELD_ENCRYPTION_KEY')),
                ('enabled', models.BooleanField(default=True)),
                ('version', models.PositiveIntegerField(default=0, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('updated_by', models.CharField(blank=True, default='', editable=False, max_length=256)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='RoutedTurn',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('msg_id', models.CharField(max_length=256, unique=True)),
                ('tenant_id', models.CharField(db_index=True, max_length=128)),
                ('user_id', models.CharField(db_index=True, max_length=256)),
                ('text', models.TextField()),
                ('predicted_intent', models.CharField(blank=True, db_index=True, default='', max_length=128)),
                ('confidence', models.FloatField(default=0.0)),
                ('top', models.JSONField(blank=True, default=list)),
                ('skill', models.CharField(blank=True, default='', max_length=128)),
                ('decision', models.CharField(choices=[('routed', 'confident: sent to the skill'), ('clarify', 'unsure: asked which skill'), ('fallback', 'out of scope: fallback skill'), ('chosen', 'the user picked the skill'), ('callback', 'a button of a skill'), ('keyword', 'keyword router (no model yet)')], default='routed', max_length=16)),
                ('router_version', models.CharField(blank=True, default='', max_length=64)),
                ('corrected_intent', models.CharField(blank=True, default='', max_length=128)),
                ('corrected_by', models.CharField(blank=True, default='', max_length=256)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='RouterModel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.CharField(max_length=64, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('activated_at', models.DateTimeField(blank=True, db_index=True, help_text='The most recently activated model is the one workers use', null=True)),
                ('created_by', models.CharField(blank=True, default='', max_length=256)),
                ('n_examples', models.PositiveIntegerField(default=0)),
                ('intents', models.JSONField(default=list)),
                ('embedders', models.JSONField(default=list)),
                ('metrics', models.JSONField(blank=True, default=dict)),
                ('train_seconds', models.FloatField(default=0.0)),
                ('artefact', models.BinaryField()),
                ('size_bytes', models.PositiveIntegerField(default=0)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='IntentExample',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('intent', models.CharField(db_index=True, max_length=128)),
                ('text', models.TextField()),
                ('language', models.CharField(default='zh', help_text='zh or en', max_length=8)),
                ('source', models.CharField(choices=[('seed', 'shipped with a skill'), ('admin', 'added in admin'), ('relabel', 'relabelled routed turn'), ('import', 'imported file')], default='admin', max_length=16)),
                ('enabled', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('created_by', models.CharField(blank=True, default='', editable=False, max_length=256)),
                ('origin_tenant_id', models.CharField(blank=True, default='', editable=False, max_length=128)),
                ('origin_user_id', models.CharField(blank=True, db_index=True, default='', editable=False, max_length=256)),
            ],
            options={
                'ordering': ['intent', 'id'],
                'constraints': [models.UniqueConstraint(fields=('intent', 'text'), name='uniq_intent_example')],
            },
        ),
        migrations.CreateModel(
            name='SkillSetting',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('tenant_id', models.CharField(default='*', help_text='DingTalk corp id, or * for every tenant without its own row', max_length=128)),
                ('skill', models.CharField(max_length=128)),
                ('enabled', models.BooleanField(default=True)),
                ('config', models.JSONField(blank=True, default=dict, help_text="Overrides of the skill's Config defaults (JSON object)")),
                ('version', models.PositiveIntegerField(default=0, editable=False)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('updated_by', models.CharField(blank=True, default='', editable=False, max_length=256)),
            ],
            options={
                'ordering': ['skill', 'tenant_id'],
                'constraints': [models.UniqueConstraint(fields=('tenant_id', 'skill'), name='uniq_skill_setting')],
            },
        ),
        migrations.RunSQL(INSERT_ONLY_SQL, DROP_INSERT_ONLY_SQL),
    ]
