"""MessageRecord.reply_progress: the reply state deliver makes durable (reply-once without Redis)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('webapp', '0004_message_record_retention'),
    ]

    operations = [
        migrations.AddField(
            model_name='messagerecord',
            name='reply_progress',
            field=models.CharField(blank=True, default='', max_length=32),
        ),
    ]
