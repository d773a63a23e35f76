"""PostgreSQL-only indexes for the Devices tab at a million rows: substring search
on identities (trigram) and tag filters (JSON containment). SQLite skips them."""

from django.db import migrations

CREATE = [
    # pg_trgm is a trusted extension: the database owner may create it.
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # The expression Django's icontains lookup compares, so the search can use it.
    # New entries go to a pending list merged in bulk (32 MB, instead of 4 MB),
    # so a million-row import does not pay a GIN insertion per row.
    "CREATE INDEX IF NOT EXISTS device_identity_trgm ON devices_device "
    "USING gin (UPPER(identity::text) gin_trgm_ops) WITH (gin_pending_list_limit = 32768)",
    "CREATE INDEX IF NOT EXISTS device_tags_gin ON devices_device "
    "USING gin (tags jsonb_path_ops) WITH (gin_pending_list_limit = 32768)",
]
DROP = [
    "DROP INDEX IF EXISTS device_identity_trgm",
    "DROP INDEX IF EXISTS device_tags_gin",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("devices", "0003_more_event_kinds")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
