"""Granting the device maker role: `manage.py grant_device_maker`, the Django admin's
user and group pages, and the upgrade that makes existing connector owners makers."""

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import ApiToken
from accounts.services import DEVICE_MAKERS_GROUP, device_maker_permission, is_device_maker
from connectors.models import Connector

pytestmark = pytest.mark.django_db

NEW_CONNECTOR = {"name": "Mine", "identity_format": {"type": "base10"}, "auth_mode": "token"}


def grant(*args) -> str:
    out = StringIO()
    call_command("grant_device_maker", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def fresh(user):
    return type(user).objects.get(pk=user.pk)


def test_granting_the_role_opens_the_api_and_the_console_to_a_plain_user(
    end_user, end_user_client, end_user_browser
):
    assert end_user_client.post("/api/v1/connectors/", NEW_CONNECTOR).status_code == 403
    assert end_user_browser.get("/connectors/new/").status_code == 403

    assert grant("enduser") == "enduser is now a device maker.\n"

    assert fresh(end_user).groups.filter(name=DEVICE_MAKERS_GROUP).exists()
    assert end_user_client.post("/api/v1/connectors/", NEW_CONNECTOR).status_code == 201
    assert end_user_browser.get("/connectors/new/").status_code == 200
    assert grant("enduser") == "enduser was already a device maker.\n"


def test_revoking_the_role_closes_the_api_and_the_console_again(owner, api_client):
    assert api_client.get("/api/v1/connectors/").status_code == 200

    assert grant("owner", "--revoke") == "owner is no longer a device maker.\n"

    assert not is_device_maker(fresh(owner))
    assert api_client.get("/api/v1/connectors/").status_code == 403
    assert api_client.post("/api/v1/connectors/", NEW_CONNECTOR).status_code == 403
    assert not Connector.objects.exists()
    browser = Client()
    browser.force_login(owner)
    assert browser.get("/connectors/").status_code == 403


def test_revoking_also_removes_a_permission_granted_directly(end_user):
    end_user.user_permissions.add(device_maker_permission())
    assert is_device_maker(fresh(end_user))
    grant("enduser", "--revoke")
    assert not is_device_maker(fresh(end_user))


def test_revoking_a_superuser_fails_and_says_why(admin_user):
    with pytest.raises(CommandError, match="superuser"):
        grant("admin", "--revoke")


def test_revoking_a_maker_through_another_group_fails_and_names_the_group(end_user):
    factory = Group.objects.create(name="Factory line")
    factory.permissions.add(device_maker_permission())
    end_user.groups.add(factory)
    with pytest.raises(CommandError, match="'Factory line'"):
        grant("enduser", "--revoke")
    assert is_device_maker(fresh(end_user))


def test_granting_to_an_unknown_user_fails():
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        grant("nobody")
    assert not Group.objects.get(name=DEVICE_MAKERS_GROUP).user_set.exists()


def test_create_api_token_refuses_a_plain_user_and_serves_a_maker(end_user):
    with pytest.raises(CommandError, match="not a device maker"):
        call_command("create_api_token", "enduser", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()

    grant("enduser")
    out = StringIO()
    call_command("create_api_token", "enduser", stdout=out, stderr=StringIO())
    assert ApiToken.objects.get().user == end_user
    assert out.getvalue().startswith("gh_")


def test_the_admin_user_list_shows_the_role_and_its_actions_grant_and_revoke(
    admin_client, admin_user, end_user, owner
):
    listing = admin_client.get("/admin/auth/user/")
    assert listing.status_code == 200
    assert b"Device maker" in listing.content
    assert b"grant_device_maker" in listing.content

    response = admin_client.post(
        "/admin/auth/user/", {"action": "grant_device_maker", "_selected_action": [end_user.pk]}
    )
    assert response.status_code == 302
    assert is_device_maker(fresh(end_user))
    entry = LogEntry.objects.get(object_id=str(end_user.pk))
    assert entry.user == admin_user
    assert "device maker" in entry.get_change_message()

    admin_client.post(
        "/admin/auth/user/",
        {"action": "revoke_device_maker", "_selected_action": [end_user.pk, owner.pk]},
    )
    assert not is_device_maker(fresh(end_user))
    assert not is_device_maker(fresh(owner))
    assert LogEntry.objects.filter(object_id=str(owner.pk), user=admin_user).exists()


def test_an_admin_grants_the_role_on_the_user_page(admin_client, end_user):
    group = Group.objects.get(name=DEVICE_MAKERS_GROUP)
    page = admin_client.get(f"/admin/auth/user/{end_user.pk}/change/")
    assert DEVICE_MAKERS_GROUP in page.content.decode()
    response = admin_client.post(
        f"/admin/auth/user/{end_user.pk}/change/",
        {
            "username": "enduser",
            "email": "enduser@example.com",
            "is_active": "on",
            "groups": [group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()
    assert is_device_maker(fresh(end_user))


def test_an_admin_gives_the_permission_to_a_group_of_their_own(admin_client, end_user):
    permission = Permission.objects.get(codename="device_maker")
    response = admin_client.post(
        "/admin/auth/group/add/", {"name": "Factory line", "permissions": [permission.pk]}
    )
    assert response.status_code == 302
    end_user.groups.add(Group.objects.get(name="Factory line"))
    assert is_device_maker(fresh(end_user))


def test_the_upgrade_makes_existing_connector_owners_and_managers_device_makers(
    django_user_model,
):
    migration = importlib.import_module("accounts.migrations.0002_device_makers")
    maker = django_user_model.objects.create_user("maker")
    manager = django_user_model.objects.create_user("manager")
    bystander = django_user_model.objects.create_user("bystander")
    connector = Connector.objects.create(name="Before roles", owner=maker)
    connector.managers.add(manager)
    Group.objects.filter(name=DEVICE_MAKERS_GROUP).delete()

    migration.create_device_makers(apps, None)

    assert is_device_maker(fresh(maker))
    assert is_device_maker(fresh(manager))
    assert not is_device_maker(fresh(bystander))
