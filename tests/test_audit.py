"""The event log is the audit trail: it outlives what it describes, names who did each
admin action through every door (portal, management API, Django admin), and only
retention removes it."""

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from certificates.models import IssuedCertificate, RevokedCertificate, TrustAnchor
from connectors.models import Connector, Resource
from devices import services
from devices.models import DataPoint, Device, Event
from tests.conftest import bearer_client
from tests.tls import make_ca, make_certificate

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(owner):
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def busy(connector, device_client, whitelist):
    """A connector with a log: three devices whitelisted, activated and writing."""
    for number in range(1, 4):
        identity = f"0000000{number}"
        whitelist(connector, identity)
        token = device_client.activate(identity).content.decode()
        for value in range(5):
            assert device_client.write(f"myalias={value}", f"Token {token}").status_code == 204
    device_client.activate("99999999")  # refused: not whitelisted, logged all the same
    return connector


def log_of(connector_id: str):
    return Event.objects.filter(connector_id=connector_id).order_by("id")


def assert_deleted_by(connector_id: str, before: list, username: str, via: str):
    """The log is what it was, plus one `delete` line naming the person and the door."""
    assert not Connector.objects.filter(pk=connector_id).exists()
    after = list(log_of(connector_id).values_list("pk", flat=True))
    assert after[:-1] == before
    deleted = log_of(connector_id).last()
    assert deleted.kind == Event.DELETE
    assert deleted.identity == ""
    assert deleted.actor.get_username() == username
    assert deleted.actor_name == username
    assert f"by {username} via {via}" in deleted.reason
    return deleted


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


def test_deleting_a_connector_in_the_portal_asks_then_keeps_its_log(owner_client, busy):
    before = list(log_of(busy.pk).values_list("pk", flat=True))
    url = f"/connectors/{busy.pk}/delete/"

    page = owner_client.get(url)
    assert page.status_code == 200
    assert "3 devices" in page.content.decode()
    assert Connector.objects.filter(pk=busy.pk).exists()

    response = owner_client.post(url)

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

    listing = admin_client.get("/admin/devices/event/", {"connector_state": "deleted"})
    assert listing.status_code == 200
    shown = listing.context["cl"].result_list
    assert {event.connector_id for event in shown} == {connector_id}
    assert f"{connector_id} (deleted)" in listing.content.decode()

    found = admin_client.get("/admin/devices/event/", {"q": connector_id})
    assert len(found.context["cl"].result_list) == log_of(connector_id).count()

    line = log_of(connector_id).last()
    page = admin_client.get(f"/admin/devices/event/{line.pk}/change/")
    assert page.status_code == 200
    assert f"{connector_id} (deleted)" in page.content.decode()


def test_events_cannot_be_deleted_or_changed_in_the_admin(admin_client, busy):
    event = log_of(busy.pk).first()
    count = Event.objects.count()

    listing = admin_client.get("/admin/devices/event/")
    assert listing.status_code == 200
    assert listing.context["action_form"] is None  # no actions at all, so no "delete selected"
    response = admin_client.post(
        "/admin/devices/event/",
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert response.status_code in (200, 302)
    assert admin_client.get(f"/admin/devices/event/{event.pk}/delete/").status_code == 403
    assert (
        admin_client.post(f"/admin/devices/event/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    page = admin_client.get(f"/admin/devices/event/{event.pk}/change/").content.decode()
    assert 'name="reason"' not in page
    assert (
        admin_client.post(
            f"/admin/devices/event/{event.pk}/change/", {"reason": "edited"}
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


# --- every admin action names its actor, through every door --------------------------------


def test_connector_create_and_change_through_the_api_name_the_actor(api_client, owner):
    created = api_client.post(
        "/api/v1/connectors/",
        {"name": "Meters", "identity_format": {"type": "base10", "length": 8}},
    )
    assert created.status_code == 201
    connector_id = created.json()["id"]
    changed = api_client.patch(
        f"/api/v1/connectors/{connector_id}/",
        {"auth_mode": "password", "ip_allowlist": ["10.0.0.0/8"]},
    )
    assert changed.status_code == 200
    api_client.patch(f"/api/v1/connectors/{connector_id}/", {"name": "Meters"})  # no change

    lines = list(log_of(connector_id))
    assert [(line.kind, line.actor_id) for line in lines] == [
        (Event.CREATE, owner.pk),
        (Event.CHANGE, owner.pk),
    ]
    assert "“Meters” created" in lines[0].reason
    assert "auth_mode 'token' → 'password'" in lines[1].reason
    assert "ip_allowlist [] → ['10.0.0.0/8']" in lines[1].reason
    assert "name" not in lines[1].reason.split(":", 1)[1]


def test_connector_create_and_settings_in_the_portal_name_the_actor(owner_client, owner):
    form = {
        "name": "Thermostats",
        "identity_type": "base10",
        "identity_prefix": "",
        "identity_mac_style": "colon",
        "identity_length": "8",
        "auth_mode": "token",
        "window_amount": "24",
        "window_unit": "hours",
        "ip_allowlist_text": "",
    }
    assert owner_client.post("/connectors/new/", form).status_code == 302
    connector = Connector.objects.get()
    response = owner_client.post(
        f"/connectors/{connector.pk}/settings/", {**form, "self_registration": "on"}
    )
    assert response.status_code == 302

    lines = list(log_of(connector.pk))
    assert [(line.kind, line.actor_name) for line in lines] == [
        (Event.CREATE, "owner"),
        (Event.CHANGE, "owner"),
    ]
    assert "self_registration False → True" in lines[1].reason
    assert "owner via portal" in lines[1].reason


def test_connector_add_and_change_in_the_admin_name_the_actor(admin_client, owner, other_user):
    form = {
        "name": "Admin made",
        "owner": owner.pk,
        "identity_prefix": "",
        "identity_type": "base10",
        "identity_mac_style": "colon",
        "identity_length": "8",
        "auth_mode": "token",
        "ip_allowlist": "[]",
        "activation_window_seconds": "86400",
        "resources-TOTAL_FORMS": "1",
        "resources-INITIAL_FORMS": "0",
        "resources-MIN_NUM_FORMS": "0",
        "resources-MAX_NUM_FORMS": "1000",
        "resources-0-alias": "temp",
        "resources-0-format": "number",
    }
    assert admin_client.post("/admin/connectors/connector/add/", form).status_code == 302
    connector = Connector.objects.get()
    resource = Resource.objects.get()
    form.update(
        {
            "managers": [other_user.pk],
            "resources-INITIAL_FORMS": "1",
            "resources-0-id": resource.pk,
            "resources-0-connector": connector.pk,
            "resources-0-DELETE": "on",
        }
    )
    response = admin_client.post(f"/admin/connectors/connector/{connector.pk}/change/", form)
    assert response.status_code == 302

    lines = list(log_of(connector.pk))
    assert [(line.kind, line.actor_name) for line in lines] == [
        (Event.CREATE, "admin"),
        (Event.CREATE, "admin"),
        (Event.DELETE, "admin"),
        (Event.CHANGE, "admin"),
    ]
    assert "alias “temp” defined" in lines[1].reason
    assert "alias “temp” removed" in lines[2].reason
    assert "managers [] → ['other']" in lines[3].reason


def test_resources_defined_and_removed_name_the_actor(api_client, owner_client, connector):
    base = f"/api/v1/connectors/{connector.pk}/resources/"
    assert api_client.post(base, {"alias": "humidity", "format": "number"}).status_code == 201
    assert api_client.patch(f"{base}humidity/", {"format": "string"}).status_code == 200
    assert api_client.delete(f"{base}humidity/").status_code == 204
    resource = Resource.objects.get(alias="myalias")
    assert (
        owner_client.post(
            f"/connectors/{connector.pk}/resources/", {"alias": "power", "format": "number"}
        ).status_code
        == 302
    )
    owner_client.post(f"/connectors/{connector.pk}/resources/{resource.pk}/delete")

    lines = [(line.kind, line.actor_name, line.reason) for line in log_of(connector.pk)]
    assert lines == [
        (Event.CREATE, "owner", "alias “humidity” defined (number) by owner via API"),
        (
            Event.CHANGE,
            "owner",
            "alias “humidity” (number) is now “humidity” (string) by owner via API",
        ),
        (Event.DELETE, "owner", "alias “humidity” removed by owner via API"),
        (Event.CREATE, "owner", "alias “power” defined (number) by owner via portal"),
        (Event.DELETE, "owner", "alias “myalias” removed by owner via portal"),
    ]


def test_device_admin_actions_name_the_actor(api_client, busy):
    base = f"/api/v1/connectors/{busy.pk}/devices/"
    assert api_client.post(base, {"identity": "00000009"}).status_code == 201
    assert api_client.post(f"{base}00000001/revoke").status_code == 200
    assert api_client.post(f"{base}00000001/reset", {}).status_code == 200

    lines = Event.objects.filter(kind__in=["whitelist", "revoke", "reset"], actor__isnull=False)
    assert [(line.kind, line.identity, line.actor_name) for line in lines.order_by("id")] == [
        (Event.WHITELIST, "00000009", "owner"),
        (Event.REVOKE, "00000001", "owner"),
        (Event.RESET, "00000001", "owner"),
    ]
    # What devices do is not anyone's admin action.
    assert not Event.objects.filter(kind__in=["write", "provision"], actor__isnull=False).exists()
    assert not Event.objects.filter(kind="write").exclude(actor_name="").exists()


def test_device_changes_in_the_admin_are_logged(admin_client, busy, other_user):
    device = Device.objects.get(identity="00000001")
    credentials = device.credentials.all()
    form = {
        "name": "Kitchen",
        "tags": "[]",
        "owner": other_user.pk,
        "parent": "",
        "credentials-TOTAL_FORMS": str(len(credentials)),
        "credentials-INITIAL_FORMS": str(len(credentials)),
        "credentials-MIN_NUM_FORMS": "0",
        "credentials-MAX_NUM_FORMS": "1000",
    }
    for number, credential in enumerate(credentials):
        form[f"credentials-{number}-id"] = credential.pk
        form[f"credentials-{number}-device"] = device.pk
    response = admin_client.post(f"/admin/devices/device/{device.pk}/change/", form)
    assert response.status_code == 302

    line = Event.objects.get(kind=Event.CHANGE)
    assert (line.identity, line.actor_name) == ("00000001", "admin")
    assert "name '' → 'Kitchen'" in line.reason
    assert "owner None → 'other'" in line.reason
    assert "tags" not in line.reason


def test_api_tokens_issued_and_deleted_are_logged_without_a_connector(api_client, owner):
    issued = api_client.post("/api/v1/tokens/", {"name": "ci"})
    assert issued.status_code == 201
    token_id = issued.json()["id"]
    assert api_client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204

    lines = list(Event.objects.filter(connector__isnull=True).order_by("id"))
    assert [(line.kind, line.actor_name) for line in lines] == [
        (Event.CREATE, "owner"),
        (Event.DELETE, "owner"),
    ]
    prefix = issued.json()["prefix"]
    assert f"API token {prefix}… “ci” of owner issued by owner via API" == lines[0].reason
    # The clear token is never logged, only the prefix the admin already shows.
    assert issued.json()["token"] not in lines[0].reason


def test_api_tokens_deleted_in_the_admin_are_logged(admin_client, owner):
    ApiToken.issue(owner, "one")
    ApiToken.issue(owner, "two")
    response = admin_client.post(
        "/admin/accounts/apitoken/",
        {
            "action": "delete_selected",
            "_selected_action": list(ApiToken.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    lines = Event.objects.filter(kind=Event.DELETE, connector__isnull=True)
    assert sorted(line.reason.split("“")[1].split("”")[0] for line in lines) == ["one", "two"]
    assert {line.actor_name for line in lines} == {"admin"}


def test_certificate_actions_through_the_api_name_the_actor(api_client, make_connector):
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    base = f"/api/v1/connectors/{connector.pk}/"
    assert api_client.post(f"{base}ca/", {}).status_code == 201
    issued = api_client.post(f"{base}ca/issue", {"name": "00000001"}).json()
    assert api_client.post(f"{base}certificates/{issued['fingerprint']}/revoke").status_code == 200
    vendor = make_ca("Vendor device CA")
    anchor = api_client.post(f"{base}trust-anchors/", {"certificate": vendor.cert_pem}).json()
    proof = make_certificate(anchor["verification_code"], issuer=vendor)
    verify = api_client.post(
        f"{base}trust-anchors/{anchor['id']}/verify", {"certificate": proof.cert_pem}
    )
    assert verify.status_code == 200
    assert api_client.delete(f"{base}trust-anchors/{anchor['id']}/").status_code == 204

    lines = list(log_of(connector.pk))
    assert len(lines) == 6
    assert {(line.kind, line.actor_name) for line in lines} == {(Event.CERTIFICATE, "owner")}
    reasons = " | ".join(line.reason for line in lines)
    for done in ("authority created", "issued certificate", "revoked", "verified", "deleted"):
        assert done in reasons


def test_an_import_started_through_the_api_names_the_actor(api_client, connector):
    csv = SimpleUploadedFile("ids.csv", b"ID,TLS Client Certificate,Tags\n00000001,,\n")
    response = api_client.post(
        f"/api/v1/connectors/{connector.pk}/imports/", {"file": csv}, format="multipart"
    )
    assert response.status_code in (201, 202), response.content

    lines = list(log_of(connector.pk).filter(kind=Event.IMPORT))
    assert [line.actor_name for line in lines] == ["owner", "owner"]
    assert "started" in lines[0].reason and "by owner via API" in lines[0].reason
    assert "1 whitelisted" in lines[1].reason


def test_the_events_api_says_who_did_what(api_client, busy):
    api_client.post(f"/api/v1/connectors/{busy.pk}/devices/00000001/revoke")

    events = api_client.get(f"/api/v1/connectors/{busy.pk}/events/").json()["results"]

    assert events[0]["kind"] == "revoke"
    assert events[0]["actor"] == "owner"
    assert {event["actor"] for event in events[1:]} == {""}


def test_a_user_who_only_reads_sees_no_audit_view(busy):
    reader = get_user_model().objects.create_user("reader", password="reader-pass-123")
    client = Client()
    client.force_login(reader)
    response = client.get("/admin/devices/event/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    # Not a device maker: no management API either.
    assert bearer_client(reader).get(f"/api/v1/connectors/{busy.pk}/events/").status_code == 403


@pytest.fixture
def pki(api_client, make_connector):
    """A certificate connector with a CA, a certificate it issued and revoked, another
    still active, and a verified trust anchor."""
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    base = f"/api/v1/connectors/{connector.pk}/"
    api_client.post(f"{base}ca/", {})
    first = api_client.post(f"{base}ca/issue", {"name": "00000001"}).json()
    api_client.post(f"{base}certificates/{first['fingerprint']}/revoke")
    api_client.post(f"{base}ca/issue", {"name": "00000002"})
    vendor = make_ca("Vendor device CA")
    anchor = api_client.post(f"{base}trust-anchors/", {"certificate": vendor.cert_pem}).json()
    proof = make_certificate(anchor["verification_code"], issuer=vendor)
    api_client.post(f"{base}trust-anchors/{anchor['id']}/verify", {"certificate": proof.cert_pem})
    return connector


def test_certificates_are_revoked_in_the_admin_only_through_the_service(admin_client, pki):
    active = IssuedCertificate.objects.get(common_name="00000002")
    assert (
        admin_client.get(f"/admin/certificates/issuedcertificate/{active.pk}/delete/").status_code
        == 403
    )
    assert (
        admin_client.post(
            f"/admin/certificates/issuedcertificate/{active.pk}/change/", {"state": "revoked"}
        ).status_code
        == 403
    )
    revoked = RevokedCertificate.objects.get()
    assert (
        admin_client.post(
            f"/admin/certificates/revokedcertificate/{revoked.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    listing = admin_client.get("/admin/certificates/revokedcertificate/")
    assert listing.context["action_form"] is None

    response = admin_client.post(
        "/admin/certificates/issuedcertificate/",
        {"action": "revoke_certificates", "_selected_action": [active.pk]},
    )

    assert response.status_code == 302
    active.refresh_from_db()
    assert active.state == IssuedCertificate.REVOKED
    assert RevokedCertificate.objects.count() == 2
    line = log_of(pki.pk).last()
    assert (line.kind, line.identity, line.actor_name) == (Event.CERTIFICATE, "", "admin")
    assert "revoked by admin via admin" in line.reason


def test_trust_anchors_changed_in_the_admin_are_logged(admin_client, pki):
    anchor = TrustAnchor.objects.get()
    url = f"/admin/certificates/trustanchor/{anchor.pk}/"
    assert admin_client.get("/admin/certificates/trustanchor/add/").status_code == 403
    assert admin_client.post(f"{url}change/", {"name": "Vendor"}).status_code == 302
    anchor.refresh_from_db()
    assert not anchor.enabled
    assert admin_client.post(f"{url}delete/", {"post": "yes"}).status_code == 302

    disabled, deleted = log_of(pki.pk).filter(actor_name="admin")
    assert " disabled" in disabled.reason and "by admin via admin" in disabled.reason
    assert " deleted by admin via admin" in deleted.reason


def test_a_connector_with_certificates_is_still_deleted_in_the_admin(admin_client, pki):
    before = list(log_of(pki.pk).values_list("pk", flat=True))
    response = admin_client.post(f"/admin/connectors/connector/{pki.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert_deleted_by(pki.pk, before, "admin", "admin")


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
