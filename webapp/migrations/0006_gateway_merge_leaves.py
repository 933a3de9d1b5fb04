# Main had two leaf migrations after the skillwire merge (0004_message_channel_card and
# 0005_merge_platform_gateway); this joins them so `migrate` runs. Drop it if main already merged them.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("webapp", "0004_message_channel_card"),
        ("webapp", "0005_merge_platform_gateway"),
    ]

    operations = []
