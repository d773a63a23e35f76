"""Portal Devices tab, "Add one device", the device page and its credential actions."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import Event
from devices import services
from devices.models import Credential, DataPoint, Device
from tests.support.clients import DeviceClient
from tests.support.tls import fingerprint, make_certificate

pytestmark = pytest.mark.django_db


def identities(response) -> list[str]:
    return re.findall(
        r'<td class="identity"><a href="[^"]+">([^<]+)</a>', response.content.decode()
    )


def test_devices_tab_lists_devices_with_status_icons_and_a_legend(owner_client, connector):
    services.whitelist_device(connector, "00000001", tags=[{"name": "group", "value": "g1"}])
    token = DeviceClient(connector).activate("00000001")
    assert token.status_code == 200
    services.whitelist_device(connector, "00000002")
    response = owner_client.get(f"/connectors/{connector.pk}/devices/")
    body = response.content.decode()
    assert identities(response) == ["00000001", "00000002"]
    assert 'class="status status-provisioned"' in body
    assert 'class="status status-whitelisted"' in body
    assert "<b>group</b>=g1" in body
    legend = body[body.index('class="legend"') :]
    for label in ["Whitelisted", "Provisioned", "Expired", "Revoked"]:
        assert label in legend
    assert connector.device_host in body


def test_devices_tab_filters_by_status_tag_and_identity(owner_client, connector):
    services.whitelist_device(connector, "00000001", tags=[{"name": "group", "value": "g1"}])
    services.whitelist_device(connector, "00000002", tags=[{"name": "group", "value": "g2"}])
    services.whitelist_device(connector, "00000013")
    DeviceClient(connector).activate("00000002")
    url = f"/connectors/{connector.pk}/devices/"
    assert identities(owner_client.get(url, {"status": "provisioned"})) == ["00000002"]
    assert identities(owner_client.get(url, {"tag": "group=g1"})) == ["00000001"]
    assert identities(owner_client.get(url, {"tag": "group"})) == ["00000001", "00000002"]
    assert identities(owner_client.get(url, {"q": "00000013"})) == ["00000013"]
    assert identities(owner_client.get(url, {"q": "0000001"})) == ["00000013"]
    assert b"No device matches" in owner_client.get(url, {"q": "99"}).content


def test_mac_search_finds_the_device_whatever_the_case(owner_client, make_connector):
    connector = make_connector(identity_type="mac")
    services.whitelist_device(connector, "AA:BB:CC:DD:EE:01")
    response = owner_client.get(f"/connectors/{connector.pk}/devices/", {"q": "AA:BB:CC:DD:EE:01"})
    assert identities(response) == ["aa:bb:cc:dd:ee:01"]
    response = owner_client.get(f"/connectors/{connector.pk}/devices/", {"q": "AA:BB:CC"})
    assert identities(response) == ["aa:bb:cc:dd:ee:01"]


def test_keyset_pages_move_forward_and_back(owner_client, connector, settings):
    for number in range(1, 121):
        services.whitelist_device(connector, f"{number:08d}")
    url = f"/connectors/{connector.pk}/devices/"
    first = owner_client.get(url, {"status": "whitelisted"})
    assert identities(first)[0] == "00000001"
    assert len(identities(first)) == 50
    body = first.content.decode()
    assert "← Previous</span>" in body  # nothing before the first page
    next_query = re.search(r'href="\?([^"]+)" rel="next"', body).group(1).replace("&amp;", "&")
    assert "status=whitelisted" in next_query
    second = owner_client.get(f"{url}?{next_query}")
    assert identities(second)[0] == "00000051"
    third_query = re.search(r'href="\?([^"]+)" rel="next"', second.content.decode()).group(1)
    third = owner_client.get(f"{url}?{third_query.replace('&amp;', '&')}")
    assert identities(third) == [f"{n:08d}" for n in range(101, 121)]
    assert "Next →</span>" in third.content.decode()
    back_query = re.search(r'href="\?([^"]+)" rel="prev"', third.content.decode()).group(1)
    back = owner_client.get(f"{url}?{back_query.replace('&amp;', '&')}")
    assert identities(back) == identities(second)


@pytest.mark.parametrize(
    "query",
    [
        "after=abc",
        "after=-5",
        "after=0",
        "before=99999999999999999999999",
        "after=1.5",
        "status=bogus",
        "tag==x",
        "q=" + "x" * 400,
        "after=1&before=5",
    ],
)
def test_bad_list_queries_never_fail(owner_client, connector, query):
    services.whitelist_device(connector, "00000001")
    response = owner_client.get(f"/connectors/{connector.pk}/devices/?{query}")
    assert response.status_code in (200, 400)


def test_bad_cursor_is_explained_on_the_page(owner_client, connector):
    response = owner_client.get(f"/connectors/{connector.pk}/devices/?after=abc")
    assert response.status_code == 400
    assert b"page link is damaged" in response.content


def test_add_one_device_with_tags_and_its_own_window(owner_client, connector):
    page = owner_client.get(f"/connectors/{connector.pk}/devices/new/").content.decode()
    assert 'name="window_amount" value="24"' in page  # the connector's window by default
    assert "exactly 8 decimal digits" in page
    response = owner_client.post(
        f"/connectors/{connector.pk}/devices/new/",
        {
            "identity": "00000001",
            "tags": "group=g1\nclaim_code=abc",
            "window_amount": "48",
            "window_unit": "hours",
        },
    )
    device = Device.objects.get(connector=connector)
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/{connector.pk}/devices/{device.pk}/"
    assert device.status == Device.WHITELISTED
    assert device.tags == [{"name": "group", "value": "g1"}, {"name": "claim_code", "value": "abc"}]
    remaining = device.activation_expires_at - timezone.now()
    assert timedelta(hours=47, minutes=59) < remaining <= timedelta(hours=48)
    assert Event.objects.get(kind="whitelist").reason == "owner via portal"


def test_tags_may_also_be_the_csv_json_list(owner_client, connector):
    owner_client.post(
        f"/connectors/{connector.pk}/devices/new/",
        {
            "identity": "00000001",
            "tags": '[{"name": "group", "value": "g1"}]',
            "window_amount": "1",
            "window_unit": "days",
        },
    )
    assert Device.objects.get().tags == [{"name": "group", "value": "g1"}]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"identity": "12ab"}, "identity", "exactly 8 decimal digits"),
        ({"identity": ""}, "identity", "required"),
        ({"identity": "00000009"}, "identity", "already whitelisted"),
        ({"tags": "novalue"}, "tags", "name=value"),
        ({"tags": "[{"}, "tags", "Not valid JSON"),
        ({"tags": '[{"name": "a"}]'}, "tags", "exactly"),
        ({"window_amount": "0"}, "window_amount", "greater than or equal to 1"),
        ({"window_amount": "367", "window_unit": "days"}, "window_amount", "between 1 minute"),
        ({"window_unit": "weeks"}, "window_unit", "Select a valid choice"),
    ],
)
def test_bad_new_device_is_refused_next_to_the_field(owner_client, connector, data, field, message):
    services.whitelist_device(connector, "00000009")
    form = {"identity": "00000001", "tags": "", "window_amount": "24", "window_unit": "hours"}
    form.update(data)
    response = owner_client.post(f"/connectors/{connector.pk}/devices/new/", form)
    assert response.status_code == 200
    body = response.content.decode()
    error_start = body.index(f'id="id_{field}_error"')
    assert message in body[error_start : error_start + 600]
    assert list(Device.objects.values_list("identity", flat=True)) == ["00000009"]


def test_adding_a_device_needs_csrf_token(owner, connector):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(
        f"/connectors/{connector.pk}/devices/new/",
        {"identity": "00000001", "window_amount": "1", "window_unit": "hours"},
    )
    assert response.status_code == 403
    assert not Device.objects.exists()


def test_device_page_shows_status_tags_credentials_events_and_data(owner_client, make_connector):
    connector = make_connector(
        identity_type="base10",
        identity_length=8,
        _resources={"temperature": "number", "mode": "string", "on": "boolean"},
    )
    services.whitelist_device(connector, "00000001", tags=[{"name": "group", "value": "g1"}])
    client = DeviceClient(connector)
    token = client.activate("00000001").content.decode()
    for value in ["20.5", "21", "19.75"]:
        assert (
            client.write(f"temperature={value}&mode=eco&on=true", f"Token {token}").status_code
            == 204
        )
    device = Device.objects.get()
    body = owner_client.get(f"/connectors/{connector.pk}/devices/{device.pk}/").content.decode()
    assert "status status-provisioned" in body
    assert "<b>group</b>=g1" in body
    assert "Active" in body and "Token" in body
    assert token not in body
    assert body.count('class="kind kind-write"') == 3
    chart = body[body.index('aria-label="temperature over time"') :]
    points = re.search(r'<polyline class="line" points="([^"]+)"', chart).group(1)
    assert len(points.split()) == 3
    assert "latest 19.75" in body
    values = body[body.index('class="stackable latest-values"') :]
    assert "<b>mode</b>" in values and "eco" in values
    assert "<b>on</b>" in values and "true" in values


def test_device_of_another_connector_is_404(owner_client, connector, make_connector):
    other = make_connector()
    device = services.whitelist_device(other, "dev-1")
    assert owner_client.get(f"/connectors/{connector.pk}/devices/{device.pk}/").status_code == 404
    assert owner_client.get(f"/connectors/{other.pk}/devices/999999/").status_code == 404
    response = owner_client.get(f"/connectors/{connector.pk}/devices/{device.pk}/revoke/")
    assert response.status_code == 404


def test_device_of_someone_elses_connector_is_404(other_browser, connector):
    device = services.whitelist_device(connector, "00000001")
    base = f"/connectors/{connector.pk}/devices/{device.pk}"
    assert other_browser.get(f"{base}/").status_code == 404
    assert other_browser.post(f"{base}/revoke/").status_code == 404
    device.refresh_from_db()
    assert device.status == Device.WHITELISTED


def test_revoke_asks_to_confirm_then_revokes_on_post(owner_client, connector):
    services.whitelist_device(connector, "00000001")
    DeviceClient(connector).activate("00000001")
    device = Device.objects.get()
    url = f"/connectors/{connector.pk}/devices/{device.pk}/revoke/"
    page = owner_client.get(url)
    assert page.status_code == 200
    assert b"Revoke 00000001?" in page.content
    device.refresh_from_db()
    assert device.status == Device.PROVISIONED  # a GET changes nothing
    response = owner_client.post(url)
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.status == Device.REVOKED
    assert device.credentials.get().state == Credential.REVOKED
    assert Event.objects.filter(kind="revoke", reason="owner via portal").exists()


def test_reset_re_enables_an_expired_device_with_a_fresh_window(owner_client, connector):
    device = services.whitelist_device(connector, "00000001")
    Device.objects.filter(pk=device.pk).update(status=Device.EXPIRED)
    url = f"/connectors/{connector.pk}/devices/{device.pk}/reset/"
    assert b"Re-enable 00000001?" in owner_client.get(url).content
    owner_client.post(url)
    device.refresh_from_db()
    assert device.status == Device.WHITELISTED
    assert device.activation_expires_at > timezone.now() + timedelta(hours=23)
    assert DeviceClient(connector).activate("00000001").status_code == 200


def test_credential_actions_need_csrf_token(owner, connector):
    services.whitelist_device(connector, "00000001")
    DeviceClient(connector).activate("00000001")
    device = Device.objects.get()
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    for action in ["revoke", "reset"]:
        response = client.post(f"/connectors/{connector.pk}/devices/{device.pk}/{action}/")
        assert response.status_code == 403
    device.refresh_from_db()
    assert device.status == Device.PROVISIONED


def test_unknown_device_action_is_404(owner_client, connector):
    device = services.whitelist_device(connector, "00000001")
    response = owner_client.post(f"/connectors/{connector.pk}/devices/{device.pk}/explode/")
    assert response.status_code == 404


def test_chart_of_a_single_value_and_of_a_flat_line(owner_client, connector):
    device = services.whitelist_device(connector, "00000001")
    DataPoint.objects.create(device=device, alias="myalias", value="5")
    body = owner_client.get(f"/connectors/{connector.pk}/devices/{device.pk}/").content.decode()
    assert 'aria-label="myalias over time"' in body
    DataPoint.objects.create(device=device, alias="myalias", value="5")
    body = owner_client.get(f"/connectors/{connector.pk}/devices/{device.pk}/").content.decode()
    assert 'aria-label="myalias over time"' in body


def test_add_one_device_may_pin_its_certificate(owner_client, make_connector):
    connector = make_connector(auth_mode="certificate")
    issued = make_certificate("sensor-1")
    response = owner_client.post(
        f"/connectors/{connector.pk}/devices/new/",
        {
            "identity": "sensor-1",
            "certificate": issued.cert_pem,
            "window_amount": "1",
            "window_unit": "days",
        },
    )
    assert response.status_code == 302
    credential = Credential.objects.get(device__identity="sensor-1")
    assert credential.state == Credential.INACTIVE
    assert credential.fingerprint == fingerprint(issued.cert)
    page = owner_client.get(response["Location"]).content.decode()
    assert credential.fingerprint[:10] in page


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ("not a certificate", "PEM"),
        (None, "does not match the ID"),
    ],
)
def test_a_certificate_that_cannot_be_pinned_leaves_no_entry(
    owner_client, make_connector, certificate, message
):
    connector = make_connector(auth_mode="certificate")
    pem_text = certificate if certificate is not None else make_certificate("other").cert_pem
    response = owner_client.post(
        f"/connectors/{connector.pk}/devices/new/",
        {
            "identity": "sensor-1",
            "certificate": pem_text,
            "window_amount": "1",
            "window_unit": "days",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    error_start = body.index('id="id_certificate_error"')
    assert message in body[error_start : error_start + 600]
    assert not Device.objects.exists()
    assert not Event.objects.exists()
