from django.db import migrations, models


class Migration(migrations.Migration):
    """The write queue became a Redis stream read by a consumer group: one mark per ingest.

    The single mark row there was becomes the lock row (consumer "").
    """

    dependencies = [
        ("devices", "0011_whitelistimport_attempts"),
    ]

    operations = [
        migrations.RemoveField(model_name="ingestmark", name="epoch"),
        migrations.RemoveField(model_name="ingestmark", name="last_sequence"),
        migrations.AddField(
            model_name="ingestmark",
            name="consumer",
            field=models.CharField(default="", max_length=200, unique=True),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="ingestmark",
            name="entries",
            field=models.TextField(blank=True),
        ),
    ]
