"""The event log is the audit trail: it outlives what it describes (devices, whole
connectors), the admin's event list shows it read-only, and only retention removes it."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit.models import Event
from connectors.models import Connector
from devices import services
from devices.models import DataPoint, Device
from tests.support.audit import assert_deleted_by, log_of
from tests.support.clients import bearer_client

pytestmark = pytest.mark.django_db


# --- a deleted connector's log stays -------------------------------------------------------


def test_deleting_a_connector_through_the_api_keeps_its_log_and_logs_who(api_client, busy):
    before = list(log_of(busy.pk).values_list("pk", flat=True))
    assert len(before) == 3 * (1 + 1 + 5) + 1  # whitelist, provision, 5 writes; one refusal

    response = api_client.delete(f"/api/v1/connectors/{busy.pk}/")

    assert response.status_code == 204
    deleted = assert_deleted_by(busy.pk, before, "owner", "API")
    assert deleted.source_ip == "127.0.0.1"
    assert "“Connector" in deleted.reason and "3 devices, 1 alias" in deleted.reason
    assert not Device.objects.exists() and not DataPoint.objects.exists()


def test_deleting_a_connector_in_the_portal_asks_then_keeps_its_log(owner_browser, busy):
    before = list(log_of(busy.pk).values_list("pk", flat=True))
    url = f"/connectors/{busy.pk}/delete/"

    page = owner_browser.get(url)
    assert page.status_code == 200
    assert "3 devices" in page.content.decode()
    assert Connector.objects.filter(pk=busy.pk).exists()

    response = owner_browser.post(url)

    assert response.status_code == 302
    assert response["Location"] == "/connectors/"
    assert_deleted_by(busy.pk, before, "owner", "portal")


def test_someone_elses_connector_cannot_be_deleted_in_the_portal(other_user, busy):
    stranger = Client()
    stranger.force_login(other_user)
    count = log_of(busy.pk).count()
    assert stranger.get(f"/connectors/{busy.pk}/delete/").status_code == 404
    assert stranger.post(f"/connectors/{busy.pk}/delete/").status_code == 404
    assert Connector.objects.filter(pk=busy.pk).exists()
    assert log_of(busy.pk).count() == count


def test_deleting_a_connector_in_the_admin_keeps_its_log(admin_client, busy):
    before = list(log_of(busy.pk).values_list("pk", flat=True))

    response = admin_client.post(f"/admin/connectors/connector/{busy.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert_deleted_by(busy.pk, before, "admin", "admin")


def test_bulk_deleting_connectors_in_the_admin_logs_each(admin_client, busy, make_connector):
    second = make_connector()
    before = list(log_of(busy.pk).values_list("pk", flat=True))

    response = admin_client.post(
        "/admin/connectors/connector/",
        {"action": "delete_selected", "_selected_action": [busy.pk, second.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert_deleted_by(busy.pk, before, "admin", "admin")
    assert_deleted_by(second.pk, [], "admin", "admin")


def test_deleting_a_device_keeps_its_events(api_client, busy):
    identity = "00000001"
    before = list(
        Event.objects.filter(identity=identity).order_by("id").values_list("pk", flat=True)
    )
    assert len(before) == 7

    response = api_client.delete(f"/api/v1/connectors/{busy.pk}/devices/{identity}/")

    assert response.status_code == 204
    assert not Device.objects.filter(identity=identity).exists()
    lines = list(Event.objects.filter(identity=identity).order_by("id"))
    assert [line.pk for line in lines[:-1]] == before
    assert (lines[-1].kind, lines[-1].actor_name, lines[-1].reason) == (
        Event.DELETE,
        "owner",
        "owner via API",
    )


def test_bulk_deleting_devices_in_the_admin_logs_each_and_keeps_their_events(admin_client, busy):
    count = Event.objects.count()
    devices = list(Device.objects.order_by("identity")[:2])

    response = admin_client.post(
        "/admin/devices/device/",
        {
            "action": "delete_selected",
            "_selected_action": [device.pk for device in devices],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert Device.objects.count() == 1
    deletes = Event.objects.filter(kind=Event.DELETE).order_by("identity")
    assert [(line.identity, line.actor_name) for line in deletes] == [
        ("00000001", "admin"),
        ("00000002", "admin"),
    ]
    assert Event.objects.count() == count + 2


def test_deleting_the_acting_account_keeps_its_name_on_the_lines(admin_client, admin_user, busy):
    admin_client.post(f"/admin/connectors/connector/{busy.pk}/delete/", {"post": "yes"})
    deleted = log_of(busy.pk).last()
    assert deleted.actor_id == admin_user.pk

    admin_user.delete()

    deleted.refresh_from_db()
    assert (deleted.actor_id, deleted.actor_name) == (None, "admin")


# --- the audit view: the admin's event list ------------------------------------------------


def test_the_admin_lists_a_deleted_connectors_log_and_finds_it_by_id(admin_client, busy):
    connector_id = busy.pk
    admin_client.post(f"/admin/connectors/connector/{connector_id}/delete/", {"post": "yes"})

    listing = admin_client.get("/admin/audit/event/", {"connector_state": "deleted"})
    assert listing.status_code == 200
    shown = listing.context["cl"].result_list
    assert {event.connector_id for event in shown} == {connector_id}
    assert f"{connector_id} (deleted)" in listing.content.decode()

    found = admin_client.get("/admin/audit/event/", {"q": connector_id})
    assert len(found.context["cl"].result_list) == log_of(connector_id).count()

    line = log_of(connector_id).last()
    page = admin_client.get(f"/admin/audit/event/{line.pk}/change/")
    assert page.status_code == 200
    assert f"{connector_id} (deleted)" in page.content.decode()


def test_events_cannot_be_deleted_or_changed_in_the_admin(admin_client, busy):
    event = log_of(busy.pk).first()
    count = Event.objects.count()

    listing = admin_client.get("/admin/audit/event/")
    assert listing.status_code == 200
    assert listing.context["action_form"] is None  # no actions at all, so no "delete selected"
    response = admin_client.post(
        "/admin/audit/event/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert admin_client.get(f"/admin/audit/event/{event.pk}/delete/").status_code == 403
    assert (
        admin_client.post(f"/admin/audit/event/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    page = admin_client.get(f"/admin/audit/event/{event.pk}/change/").content.decode()
    assert 'name="reason"' not in page
    assert (
        admin_client.post(
            f"/admin/audit/event/{event.pk}/change/", {"reason": "edited"}
        ).status_code
        == 403
    )
    assert Event.objects.count() == count
    event.refresh_from_db()
    assert event.reason != "edited"


# --- retention is what removes events -----------------------------------------------------


def test_retention_purges_old_lines_of_deleted_connectors_too(api_client, busy, settings):
    settings.EVENT_RETENTION_DAYS = 30
    connector_id = busy.pk
    api_client.delete(f"/api/v1/connectors/{connector_id}/")
    kept = log_of(connector_id).last()
    log_of(connector_id).exclude(pk=kept.pk).update(created_at=timezone.now() - timedelta(days=31))

    purged = services.purge_old_records(batch_size=7)

    assert purged["event"] == 22
    assert list(log_of(connector_id)) == [kept]


def test_a_connector_with_certificates_is_still_deleted_in_the_admin(admin_client, pki):
    before = list(log_of(pki.pk).values_list("pk", flat=True))
    response = admin_client.post(f"/admin/connectors/connector/{pki.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert_deleted_by(pki.pk, before, "admin", "admin")


def test_a_user_who_only_reads_sees_no_audit_view(busy):
    reader = get_user_model().objects.create_user("reader", password="reader-pass-123")
    client = Client()
    client.force_login(reader)
    response = client.get("/admin/audit/event/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # Not a device maker: no management API either.
    assert bearer_client(reader).get(f"/api/v1/connectors/{busy.pk}/events/").status_code == 403


def test_only_retention_removes_events(busy):
    with pytest.raises(TypeError, match="append-only"):
        Event.objects.filter(connector=busy).delete()
    with pytest.raises(TypeError, match="append-only"):
        Event.objects.first().delete()
    assert Event.objects.count() == 22


@pytest.mark.postgres
def test_the_migration_leaves_a_large_event_table_writable_on_postgresql():
    """No rewrite of the table, no validation scan, no index build that blocks inserts."""
    out = io.StringIO()
    call_command(
        "sqlmigrate", "devices", "0010_events_outlive_connectors_and_name_actors", stdout=out
    )
    statements = [
        line for line in out.getvalue().splitlines() if line and not line.startswith("--")
    ]
    # The connector constraint is dropped too where it exists (not in this migrated
    # database, so sqlmigrate does not list it here); dropping one is instant.
    assert [line for line in statements if "DROP CONSTRAINT" not in line] == [
        'ALTER TABLE "devices_event" ADD COLUMN "actor_id" integer NULL;',
        'ALTER TABLE "devices_event" ADD COLUMN "actor_name" varchar(150) DEFAULT \'\' NOT NULL;',
        'ALTER TABLE "devices_event" ALTER COLUMN "connector_id" DROP NOT NULL;',
        'CREATE INDEX CONCURRENTLY "event_actor" ON "devices_event" ("actor_id") '
        'WHERE "actor_id" IS NOT NULL;',
    ]
