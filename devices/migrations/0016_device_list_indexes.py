"""Indexes of the Devices tab at a million rows: creation order per connector and
identity prefix search. Built CONCURRENTLY on PostgreSQL, so devices keep
provisioning and writing while they build."""

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
        ("devices", "0015_event_moves_to_audit"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="device",
            index=models.Index(fields=["connector", "id"], name="device_connector_order"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="device",
            index=models.Index(
                fields=["connector", "identity"],
                name="device_identity_prefix",
                opclasses=["varchar_pattern_ops", "varchar_pattern_ops"],
            ),
        ),
    ]
