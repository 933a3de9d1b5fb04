"""An index on MessageRecord.created_at for the daily retention (MESSAGE_RECORD_RETENTION_DAYS)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webapp', '0003_timeline_setting_versions'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='messagerecord',
            index=models.Index(fields=['created_at'], name='webapp_msgrecord_created_idx'),
        ),
    ]
