"""The log moves from the devices app to its own, table and all: only Django's idea of
where the model lives changes (the table keeps its name, devices_event), and the
content type moves with it, so permissions granted on the log stay granted."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label="audit", model="event").exists():
        ContentType.objects.using(db).filter(app_label="devices", model="event").update(
            app_label="audit"
        )


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("devices", "0014_latest_by_time"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("connectors", "0002_resources_revision"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Event",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("identity", models.CharField(blank=True, max_length=160)),
                        ("actor_name", models.CharField(blank=True, db_default="", max_length=150)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("whitelist", "Whitelisted"),
                                    ("provision", "Provisioned"),
                                    ("provision_failed", "Provisioning failed"),
                                    ("write", "Write"),
                                    ("write_ignored", "Write to undefined alias"),
                                    ("read", "Read"),
                                    ("expire", "Expired"),
                                    ("reset", "Reset"),
                                    ("revoke", "Revoked"),
                                    ("delete", "Deleted"),
                                    ("auth_failed", "Authentication failed"),
                                    ("rate_limited", "Rate limited"),
                                    ("import", "Import"),
                                    ("certificate", "Certificate authority or certificate"),
                                    ("register", "Secure registration"),
                                    ("pair", "Paired"),
                                    ("pair_failed", "Pairing refused"),
                                    ("message", "Message"),
                                    ("rename", "Renamed by its owner"),
                                    ("release", "Released by its owner"),
                                    ("create", "Created"),
                                    ("change", "Changed"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("reason", models.CharField(blank=True, max_length=500)),
                        ("source_ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "connector",
                            models.ForeignKey(
                                blank=True,
                                db_constraint=False,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="events",
                                to="connectors.connector",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "devices_event",
                        "indexes": [
                            models.Index(
                                fields=["connector", "-id"], name="event_connector_recent"
                            ),
                            models.Index(
                                fields=["connector", "identity", "-id"],
                                name="event_identity_recent",
                            ),
                            models.Index(
                                fields=["connector", "kind", "created_at"], name="event_kind_time"
                            ),
                            models.Index(
                                condition=models.Q(("actor__isnull", False)),
                                fields=["actor"],
                                name="event_actor",
                            ),
                        ],
                    },
                )
            ]
        ),
        migrations.RunPython(move_content_type, migrations.RunPython.noop),
    ]
