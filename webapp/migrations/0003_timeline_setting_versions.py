"""Message timelines, setting versions (with a first version for every existing setting), and the
per-conversation kill switch of a skill; the router's cascade stage on routed turns."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def first_versions(apps: Any, schema_editor: Any) -> None:
    """Every setting saved before versions existed gets its current state as its first version, so
    "roll back to this" works for it too."""
    skill_setting = apps.get_model("webapp", "SkillSetting")
    admin_setting = apps.get_model("webapp", "AdminSetting")
    version = apps.get_model("webapp", "SettingVersion")
    db = schema_editor.connection.alias  # `migrate --database owner`: the default login may not exist yet
    for row in skill_setting.objects.using(db).all():
        version.objects.using(db).create(skill_setting=row, version=row.version, actor=row.updated_by, state={
            "tenant_id": row.tenant_id, "skill": row.skill, "conversation_id": row.conversation_id,
            "enabled": row.enabled, "config": row.config or {}})
    for row in admin_setting.objects.using(db).all():
        version.objects.using(db).create(admin_setting=row, version=row.version, actor=row.updated_by,
                               state={"key": row.key, "value": row.value})


class Migration(migrations.Migration):

    dependencies = [
        ('webapp', '0002_audit_tamper_evidence'),
    ]

    operations = [
        migrations.CreateModel(
            name='SettingVersion',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.PositiveIntegerField()),
                ('state', models.JSONField()),
                ('actor', models.CharField(blank=True, default='', max_length=256)),
                ('restored_from', models.PositiveIntegerField(blank=True, help_text='The version this one rolled back to', null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AlterModelOptions(
            name='skillsetting',
            options={'ordering': ['skill', 'tenant_id', 'conversation_id']},
        ),
        migrations.RemoveConstraint(
            model_name='skillsetting',
            name='uniq_skill_setting',
        ),
        migrations.AddField(
            model_name='messagerecord',
            name='timeline',
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name='routedturn',
            name='router_stage',
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='skillsetting',
            name='conversation_id',
            field=models.CharField(blank=True, default='', help_text='Empty: the whole tenant. A conversation id (cid…): on/off in that conversation only', max_length=256),
        ),
        migrations.AddConstraint(
            model_name='skillsetting',
            constraint=models.UniqueConstraint(fields=('tenant_id', 'skill', 'conversation_id'), name='uniq_skill_setting_scope'),
        ),
        migrations.AddField(
            model_name='settingversion',
            name='admin_setting',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='webapp.adminsetting'),
        ),
        migrations.AddField(
            model_name='settingversion',
            name='skill_setting',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='webapp.skillsetting'),
        ),
        migrations.AddConstraint(
            model_name='settingversion',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('admin_setting__isnull', True), ('skill_setting__isnull', False)), models.Q(('admin_setting__isnull', False), ('skill_setting__isnull', True)), _connector='OR'), name='setting_version_one_target'),
        ),
        migrations.AddConstraint(
            model_name='settingversion',
            constraint=models.UniqueConstraint(fields=('skill_setting', 'version'), name='uniq_skill_setting_version'),
        ),
        migrations.AddConstraint(
            model_name='settingversion',
            constraint=models.UniqueConstraint(fields=('admin_setting', 'version'), name='uniq_admin_setting_version'),
        ),
        migrations.RunPython(first_versions, migrations.RunPython.noop),
    ]
