from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0008_credential_indexes_without_pattern_ops"),
    ]

    operations = [
        migrations.AddField(
            model_name="whitelistimport",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
    ]
