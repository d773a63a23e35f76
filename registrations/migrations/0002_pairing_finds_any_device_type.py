from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0001_initial"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="registration", name="registration_serial"),
        migrations.RemoveIndex(model_name="registration", name="registration_pin"),
        migrations.AddIndex(
            model_name="registration",
            index=models.Index(fields=["serial_suffix"], name="registration_by_serial"),
        ),
        migrations.AddIndex(
            model_name="registration",
            index=models.Index(fields=["pin_hash"], name="registration_by_pin"),
        ),
    ]
