"""Events outlive their connector and name the person behind an admin action.

Safe on a large event table on PostgreSQL: dropping the connector constraint and
NOT NULL, and adding a nullable column or one with a constant default, touch no
rows; the actor index is built CONCURRENTLY, so devices keep writing meanwhile.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    """AddIndex that does not block writes on PostgreSQL (elsewhere a plain AddIndex)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [
        ("connectors", "0002_resources_revision"),
        ("devices", "0009_whitelistimport_updated_at"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="actor_name",
            field=models.CharField(blank=True, db_default="", max_length=150),
        ),
        migrations.AlterField(
            model_name="event",
            name="connector",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="events",
                to="connectors.connector",
            ),
        ),
        migrations.AlterField(
            model_name="event",
            name="kind",
            field=models.CharField(
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
        AddIndexConcurrentlyOnPostgres(
            model_name="event",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)), fields=["actor"], name="event_actor"
            ),
        ),
    ]
