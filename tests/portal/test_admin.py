import pytest
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from audit.models import Event
from connectors.models import Connector
from devices.models import Credential, DataPoint, Device, WhitelistImport

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(connector, device_client, whitelist, owner):
    """One row of every model: a provisioned device with data, an import and an API token."""
    whitelist(connector, "00000001", tags=[{"name": "group", "value": "g1"}])
    token = device_client.activate("00000001").content.decode()
    device_client.write("myalias=50", f"Token {token}")
    WhitelistImport.objects.create(connector=connector, created_by=owner, total=3)
    ApiToken.issue(owner, "laptop")
    return {
        "connectors/connector": connector.pk,
        "connectors/resource": connector.resources.get().pk,
        "devices/device": Device.objects.get().pk,
        "devices/credential": Credential.objects.get().pk,
        "audit/event": Event.objects.first().pk,
        "devices/datapoint": DataPoint.objects.get().pk,
        "devices/whitelistimport": WhitelistImport.objects.get().pk,
        "accounts/apitoken": ApiToken.objects.get().pk,
    }


def test_every_model_has_a_changelist_and_a_change_page(admin_client, records):
    for model, pk in records.items():
        listing = admin_client.get(f"/admin/{model}/")
        assert listing.status_code == 200, model
        page = admin_client.get(f"/admin/{model}/{pk}/change/")
        assert page.status_code == 200, model


def test_system_written_rows_cannot_be_added_in_the_admin(admin_client, records):
    for model in (
        "devices/device",
        "devices/credential",
        "audit/event",
        "devices/datapoint",
        "devices/whitelistimport",
        "accounts/apitoken",
    ):
        assert admin_client.get(f"/admin/{model}/add/").status_code == 403, model
    assert admin_client.get("/admin/connectors/connector/add/").status_code == 200


def test_events_are_read_only_in_the_admin(admin_client, records):
    event = Event.objects.get(pk=records["audit/event"])
    response = admin_client.post(
        f"/admin/audit/event/{event.pk}/change/", {"kind": "revoke", "reason": "edited"}
    )
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.reason != "edited"


def test_hashes_are_shown_read_only_and_never_as_inputs(admin_client, records):
    credential = Credential.objects.get()
    page = admin_client.get(f"/admin/devices/credential/{credential.pk}/change/").content.decode()
    assert 'name="token_hash"' not in page
    token = ApiToken.objects.get()
    page = admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert token.token_hash in page
    assert 'name="token_hash"' not in page
    assert 'name="name"' in page


def connector_form(**overrides):
    form = {
        "name": "Admin made",
        "owner": get_user_model().objects.get(username="owner").pk,
        "identity_prefix": "",
        "identity_type": "base10",
        "identity_mac_style": "colon",
        "identity_length": "8",
        "auth_mode": "token",
        "ip_allowlist": "[]",
        "activation_window_seconds": "86400",
        "resources-TOTAL_FORMS": "0",
        "resources-INITIAL_FORMS": "0",
        "resources-MIN_NUM_FORMS": "0",
        "resources-MAX_NUM_FORMS": "1000",
    }
    form.update(overrides)
    return form


def test_the_admin_creates_a_connector_with_a_valid_format(admin_client, owner):
    response = admin_client.post("/admin/connectors/connector/add/", connector_form())
    assert response.status_code == 302
    assert Connector.objects.get().identity_length == 8


@pytest.mark.parametrize(
    "overrides",
    [
        {"identity_length": "500"},
        {"identity_prefix": "two words"},
        {"ip_allowlist": '["not-a-cidr"]'},
        {"activation_window_seconds": "5"},
    ],
)
def test_the_admin_refuses_a_bad_connector(admin_client, owner, overrides):
    response = admin_client.post("/admin/connectors/connector/add/", connector_form(**overrides))
    assert response.status_code == 200
    assert response.context["errors"]
    assert not Connector.objects.exists()


def test_the_admin_resets_devices_through_the_service(admin_client, records):
    device = Device.objects.get()
    response = admin_client.post(
        "/admin/devices/device/",
        {"action": "reset_devices", "_selected_action": [device.pk]},
    )
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.status == Device.WHITELISTED
    assert not Credential.objects.filter(state=Credential.ACTIVE).exists()
    reset = Event.objects.get(kind=Event.RESET)
    assert reset.reason == "admin via admin"


def test_the_admin_revokes_devices_through_the_service(admin_client, records):
    device = Device.objects.get()
    admin_client.post(
        "/admin/devices/device/", {"action": "revoke_devices", "_selected_action": [device.pk]}
    )
    device.refresh_from_db()
    assert device.status == Device.REVOKED
    assert Event.objects.filter(kind=Event.REVOKE).exists()


def test_deleting_a_device_in_the_admin_logs_it(admin_client, records):
    device = Device.objects.get()
    response = admin_client.post(f"/admin/devices/device/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Device.objects.exists()
    assert Event.objects.filter(kind=Event.DELETE, identity="00000001").exists()


def test_device_tags_edited_in_the_admin_are_validated(admin_client, records):
    device = Device.objects.get()
    url = f"/admin/devices/device/{device.pk}/change/"
    form = {"name": "Kitchen", "tags": '{"group": "g1"}', "owner": "", "parent": ""}
    form.update(
        {
            "credentials-TOTAL_FORMS": "1",
            "credentials-INITIAL_FORMS": "1",
            "credentials-MIN_NUM_FORMS": "0",
            "credentials-MAX_NUM_FORMS": "1000",
            "credentials-0-id": str(Credential.objects.get().pk),
            "credentials-0-device": str(device.pk),
        }
    )
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert response.context["errors"]
    device.refresh_from_db()
    assert device.name == ""

    form["tags"] = '[{"name": "room", "value": "kitchen"}]'
    response = admin_client.post(url, form)
    assert response.status_code == 302
    device.refresh_from_db()
    assert (device.name, device.tags) == ("Kitchen", [{"name": "room", "value": "kitchen"}])
