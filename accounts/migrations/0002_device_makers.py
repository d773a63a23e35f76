"""The device maker role: its permission, the "Device makers" group that holds it,
and the group's first members: whoever already owns or manages a connector, so an
upgrade locks no existing maker out of the console."""

from django.db import migrations

GROUP = "Device makers"
CODENAME = "device_maker"
NAME = "Is a device maker: uses the console and the management API"


def create_device_makers(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    permissions = apps.get_model("auth", "Permission")
    groups = apps.get_model("auth", "Group")
    connectors = apps.get_model("connectors", "Connector")
    # Permissions are normally created after all migrations ran; this one is needed now.
    content_type, _ = content_types.objects.get_or_create(app_label="accounts", model="apitoken")
    permission, _ = permissions.objects.get_or_create(
        content_type=content_type, codename=CODENAME, defaults={"name": NAME}
    )
    group, _ = groups.objects.get_or_create(name=GROUP)
    group.permissions.add(permission)
    owners = connectors.objects.values_list("owner", flat=True)
    managers = connectors.managers.through.objects.values_list("user", flat=True)
    makers = {pk for pk in [*owners, *managers] if pk is not None}
    group.user_set.add(*makers)


def remove_device_makers(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("connectors", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="apitoken",
            options={"permissions": [("device_maker", NAME)]},
        ),
        migrations.RunPython(create_device_makers, remove_device_makers),
    ]
