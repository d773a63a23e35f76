import base64
import io
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from audit.models import Event
from connectors.models import Connector, Resource
from devices.models import Credential, DataPoint, Device
from tests.support.clients import DeviceClient

pytestmark = pytest.mark.django_db

API = "/api/v1"
WINDOW = "activation_window_seconds"
DEVICE_FIELDS = {
    "identity",
    "status",
    "tags",
    "name",
    "owner",
    "activation_expires_at",
    "provisioned_at",
    "last_seen_at",
    "auth_mode",
    "connect_by",
}


def devices_url(connector, identity=None, action=""):
    url = f"{API}/connectors/{connector.pk}/devices/"
    if identity is not None:
        url += identity + ("/" + action if action else "/")
    return url


def new_connector(client, **fields):
    body = {
        "name": "Walkthrough",
        "identity_format": {"type": "base10", "length": 8},
        **fields,
    }
    response = client.post(f"{API}/connectors/", body)
    assert response.status_code == 201, response.content
    return Connector.objects.get(pk=response.json()["id"])


def kinds(client, connector, **params):
    response = client.get(f"{API}/connectors/{connector.pk}/events/", params)
    assert response.status_code == 200, response.content
    return [event["kind"] for event in response.json()["results"]]


# --- the docs/device-api.md walkthrough, through the API ------------------------------------------


def test_seed_002_whitelist_by_api_then_activate_shows_whitelist_and_provision_events(
    api_client,
):
    created = api_client.post(
        f"{API}/connectors/",
        {
            "name": "Walkthrough",
            "identity_format": {"prefix": "", "type": "base10", "length": 8},
            "auth_mode": "token",
            "self_registration": False,
            "ip_allowlist": [],
            "activation_window_seconds": 48 * 3600,
        },
    )
    assert created.status_code == 201
    body = created.json()
    assert re.fullmatch(r"dt[0-9a-f]{32}", body["id"])
    assert body["device_host"] == f"{body['id']}.devices.localhost"
    connector = Connector.objects.get(pk=body["id"])

    whitelisted = api_client.post(devices_url(connector), {"identity": "00000001"})
    assert whitelisted.status_code == 201
    assert whitelisted.json()["status"] == "whitelisted"

    token = DeviceClient(connector).activate("00000001")
    assert token.status_code == 200
    assert len(token.content.decode()) == 40

    # After the line saying who created the connector.
    assert kinds(api_client, connector) == ["provision", "whitelist", "create"]
    device = api_client.get(devices_url(connector, "00000001")).json()
    assert device["status"] == "provisioned"
    assert device["auth_mode"] == "token"


# --- authentication and visibility -------------------------------------------------


def test_anonymous_requests_are_401_with_a_bearer_challenge(connector):
    client = APIClient()
    for url in (f"{API}/connectors/", devices_url(connector), f"{API}/tokens/"):
        response = client.get(url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_bearer_token_is_401(connector):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer gh_not-a-real-token")
    assert client.get(f"{API}/connectors/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION="Bearer ")
    assert client.get(f"{API}/connectors/").status_code == 401


def test_a_token_of_an_inactive_user_is_401(api_client, owner):
    owner.is_active = False
    owner.save()
    assert api_client.get(f"{API}/connectors/").status_code == 401


def test_the_browser_session_also_authenticates(client, owner, connector):
    client.force_login(owner)
    response = client.get(f"{API}/connectors/")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [connector.pk]


def test_a_stranger_sees_none_of_the_owners_connectors_and_gets_404_inside_them(
    other_api_client, connector, whitelist
):
    whitelist(connector, "00000001")
    Resource.objects.create(connector=connector, alias="temp")
    assert other_api_client.get(f"{API}/connectors/").json()["results"] == []
    base = f"{API}/connectors/{connector.pk}"
    for url in (
        f"{base}/",
        f"{base}/devices/",
        f"{base}/devices/00000001/",
        f"{base}/devices/00000001/data/",
        f"{base}/resources/",
        f"{base}/resources/temp/",
        f"{base}/events/",
    ):
        assert other_api_client.get(url).status_code == 404, url
    assert other_api_client.patch(f"{base}/", {"name": "mine"}).status_code == 404
    assert other_api_client.delete(f"{base}/").status_code == 404
    assert other_api_client.post(f"{base}/devices/", {"identity": "00000002"}).status_code == 404
    assert other_api_client.post(f"{base}/devices/00000001/revoke").status_code == 404
    assert other_api_client.delete(f"{base}/devices/00000001/").status_code == 404
    connector.refresh_from_db()
    assert connector.name != "mine"
    assert Device.objects.get().status == Device.WHITELISTED
    assert Device.objects.count() == 1


def test_a_manager_sees_and_manages_the_connector(other_api_client, other_user, connector):
    connector.managers.add(other_user)
    assert [c["id"] for c in other_api_client.get(f"{API}/connectors/").json()["results"]] == [
        connector.pk
    ]
    response = other_api_client.post(devices_url(connector), {"identity": "00000009"})
    assert response.status_code == 201


# --- connectors --------------------------------------------------------------------


def test_creating_a_connector_makes_the_caller_its_owner_with_defaults(api_client, owner):
    response = api_client.post(f"{API}/connectors/", {"name": "Thermostats"})
    assert response.status_code == 201
    body = response.json()
    assert body["owner"] == "owner"
    assert body["identity_format"] == {
        "prefix": "",
        "type": "opaque",
        "mac_style": "colon",
        "length": None,
    }
    assert body["auth_mode"] == "token"
    assert body["self_registration"] is False
    assert body["ip_allowlist"] == []
    assert body["activation_window_seconds"] == 24 * 3600
    assert Connector.objects.get(pk=body["id"]).owner == owner


@pytest.mark.parametrize(
    "identity_format",
    [
        {"type": "decimal"},
        {"type": "hex", "length": 0},
        {"type": "hex", "length": 500},
        {"prefix": "has space"},
        {"type": "mac", "mac_style": "dots"},
        {"length": "eight"},
        "base10",
    ],
)
def test_a_bad_identity_format_is_400_naming_the_field(api_client, identity_format):
    response = api_client.post(
        f"{API}/connectors/", {"name": "Bad", "identity_format": identity_format}
    )
    assert response.status_code == 400
    assert "identity_format" in response.json()
    assert not Connector.objects.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("ip_allowlist", ["10.0.0.0/8", "not-a-network"]),
        ("ip_allowlist", "10.0.0.0/8"),
        ("ip_allowlist", [{"cidr": "10.0.0.0/8"}]),
        ("auth_mode", "magic"),
        ("activation_window_seconds", 59),
        ("activation_window_seconds", "a day"),
        ("self_registration", "perhaps"),
        ("name", ""),
        ("name", "x" * 101),
    ],
)
def test_bad_connector_fields_are_400_with_a_message_for_the_field(api_client, field, value):
    response = api_client.post(f"{API}/connectors/", {"name": "Bad", field: value})
    assert response.status_code == 400
    assert field in response.json()
    assert not Connector.objects.exists()


def test_ipv4_and_ipv6_allowlists_are_accepted(api_client):
    response = api_client.post(
        f"{API}/connectors/", {"name": "Factory", "ip_allowlist": ["192.0.2.0/24", "2001:db8::/32"]}
    )
    assert response.status_code == 201
    assert response.json()["ip_allowlist"] == ["192.0.2.0/24", "2001:db8::/32"]


def test_patching_part_of_the_identity_format_keeps_the_rest(api_client, connector):
    url = f"{API}/connectors/{connector.pk}/"
    response = api_client.patch(url, {"identity_format": {"prefix": "SN-"}, "name": "Renamed"})
    assert response.status_code == 200
    assert response.json()["identity_format"] == {
        "prefix": "SN-",
        "type": "base10",
        "mac_style": "colon",
        "length": 8,
    }
    connector.refresh_from_db()
    assert (connector.name, connector.identity_prefix, connector.identity_length) == (
        "Renamed",
        "SN-",
        8,
    )


def test_a_patch_that_would_break_the_format_changes_nothing(api_client, connector):
    url = f"{API}/connectors/{connector.pk}/"
    response = api_client.patch(url, {"identity_format": {"length": 999}, "name": "New"})
    assert response.status_code == 400
    connector.refresh_from_db()
    assert (connector.name, connector.identity_length) != ("New", 999)


def test_id_owner_and_device_host_cannot_be_changed(api_client, connector, other_user):
    url = f"{API}/connectors/{connector.pk}/"
    response = api_client.patch(
        url, {"id": "dt" + "0" * 32, "owner": "other", "device_host": "evil.example"}
    )
    assert response.status_code == 200
    assert response.json()["id"] == connector.pk
    assert response.json()["owner"] == "owner"
    assert response.json()["device_host"] == connector.device_host


def test_put_is_not_offered(api_client, connector):
    response = api_client.put(f"{API}/connectors/{connector.pk}/", {"name": "x"})
    assert response.status_code == 405


def test_deleting_a_connector_removes_its_devices(api_client, connector, whitelist):
    whitelist(connector, "00000001")
    assert api_client.delete(f"{API}/connectors/{connector.pk}/").status_code == 204
    assert not Connector.objects.exists()
    assert not Device.objects.exists()
    assert api_client.get(f"{API}/connectors/{connector.pk}/").status_code == 404


def test_connectors_are_listed_by_name_in_pages(api_client, make_connector):
    for name in ["Charlie", "Alpha", "Bravo"]:
        make_connector(name=name)
    first = api_client.get(f"{API}/connectors/", {"page_size": 2}).json()
    assert [c["name"] for c in first["results"]] == ["Alpha", "Bravo"]
    second = api_client.get(first["next"]).json()
    assert [c["name"] for c in second["results"]] == ["Charlie"]
    assert second["next"] is None


# --- whitelisting and device reads ----------------------------------------------


def test_whitelisting_returns_the_device_in_the_documented_shape(api_client, connector):
    response = api_client.post(
        devices_url(connector),
        {
            "identity": "00000001",
            "tags": [{"name": "group", "value": "g1"}, {"name": "claim_code", "value": "abc"}],
            "activation_window_seconds": 48 * 3600,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == DEVICE_FIELDS
    assert body["identity"] == "00000001"
    assert body["status"] == "whitelisted"
    assert body["tags"] == [
        {"name": "group", "value": "g1"},
        {"name": "claim_code", "value": "abc"},
    ]
    assert body["owner"] is None
    assert body["provisioned_at"] is None
    deadline = datetime.fromisoformat(body["activation_expires_at"])
    expected = timezone.now() + timedelta(hours=48)
    assert abs((deadline - expected).total_seconds()) < 60
    event = Event.objects.get()
    assert (event.kind, event.identity) == ("whitelist", "00000001")
    assert "owner" in event.reason


def test_an_identity_outside_the_format_is_400_and_says_what_was_expected(api_client, connector):
    response = api_client.post(devices_url(connector), {"identity": "12ab"})
    assert response.status_code == 400
    assert "exactly 8 decimal digits" in response.json()["identity"][0]
    assert not Device.objects.exists()


def test_whitelisting_the_same_identity_twice_is_409(api_client, connector):
    assert api_client.post(devices_url(connector), {"identity": "00000001"}).status_code == 201
    response = api_client.post(devices_url(connector), {"identity": "00000001"})
    assert response.status_code == 409
    assert "already whitelisted" in response.json()["detail"]
    assert Device.objects.count() == 1


def test_mac_identities_are_stored_lower_case_and_found_in_any_case(api_client, make_connector):
    connector = make_connector(identity_type="mac", identity_mac_style="colon")
    response = api_client.post(devices_url(connector), {"identity": "AA:BB:CC:00:11:22"})
    assert response.status_code == 201
    assert response.json()["identity"] == "aa:bb:cc:00:11:22"
    found = api_client.get(devices_url(connector, "AA:bb:CC:00:11:22"))
    assert found.status_code == 200
    assert found.json()["identity"] == "aa:bb:cc:00:11:22"
    again = api_client.post(devices_url(connector), {"identity": "aa:bb:cc:00:11:22"})
    assert again.status_code == 409


def test_an_opaque_identity_holding_a_slash_is_reachable(api_client, make_connector):
    connector = make_connector()
    assert api_client.post(devices_url(connector), {"identity": "line/7"}).status_code == 201
    assert api_client.get(devices_url(connector, "line/7")).json()["identity"] == "line/7"
    assert api_client.post(devices_url(connector, "line/7", "revoke")).status_code == 200
    assert api_client.delete(devices_url(connector, "line/7")).status_code == 204


@pytest.mark.parametrize(
    "body, field",
    [
        ({"identity": "00000001", "tags": "group=g1"}, "tags"),
        ({"identity": "00000001", "tags": [{"name": "", "value": "x"}]}, "tags"),
        ({"identity": "00000001", "tags": [{"name": "n", "value": "v" * 257}]}, "tags"),
        ({"identity": "00000001", "tags": [["group", "g1"]]}, "tags"),
        ({"identity": "00000001", "activation_window_seconds": 10}, "activation_window_seconds"),
        (
            {"identity": "00000001", "activation_window_seconds": "soon"},
            "activation_window_seconds",
        ),
        ({"identity": ["00000001"]}, "identity"),
        ({"identity": None}, "identity"),
        ({}, "identity"),
    ],
)
def test_bad_whitelist_input_is_400_and_writes_nothing(api_client, connector, body, field):
    response = api_client.post(devices_url(connector), body)
    assert response.status_code == 400
    assert field in response.json()
    assert not Device.objects.exists()
    assert not Event.objects.exists()


def test_malformed_bodies_are_4xx_never_500(api_client, connector):
    url = devices_url(connector)
    assert api_client.post(url, "{not json", content_type="application/json").status_code == 400
    assert api_client.post(url, "[1, 2]", content_type="application/json").status_code == 400
    assert api_client.post(url, "id=1", content_type="text/plain").status_code == 415
    assert api_client.post(url, b"\xff\xfe", content_type="application/json").status_code == 400
    connectors = f"{API}/connectors/"
    assert api_client.post(connectors, "null", content_type="application/json").status_code == 400
    assert not Device.objects.exists()


def test_deeply_nested_or_non_compliant_json_is_400(api_client, connector):
    url = devices_url(connector)
    deep = '{"identity": "00000001", "tags": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = api_client.post(url, deep, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    nan = '{"identity": "00000001", "activation_window_seconds": NaN}'
    assert api_client.post(url, nan, content_type="application/json").status_code == 400
    assert not Device.objects.exists()


def test_nul_bytes_anywhere_are_4xx_on_every_database(api_client, connector):
    base = f"{API}/connectors/{connector.pk}"
    for url in (
        f"{API}/connectors/%00/",
        f"{API}/connectors/dt%00/devices/",
        f"{base}/resources/my%00alias/",
        f"{base}/devices/0000%0001/",
    ):
        assert api_client.get(url).status_code == 404, url
    for url in (
        f"{base}/events/?identity=a%00",
        f"{base}/devices/?search=a%00",
        f"{base}/devices/?tag=a%00:b",
    ):
        assert api_client.get(url).status_code == 400, url
    assert api_client.post(f"{API}/connectors/", {"name": "a\x00"}).status_code == 400
    assert api_client.post(f"{base}/devices/", {"identity": "0000000\x00"}).status_code == 400
    assert api_client.post(f"{API}/tokens/", {"name": "a\x00"}).status_code == 400
    assert api_client.delete(f"{API}/tokens/99999999999999999999999/").status_code == 404


def test_unknown_and_malformed_identities_in_the_url_are_404(api_client, connector):
    assert api_client.get(devices_url(connector, "00000001")).status_code == 404
    assert api_client.get(devices_url(connector, "not-a-number")).status_code == 404
    assert api_client.post(devices_url(connector, "zzz", "reset")).status_code == 404
    assert api_client.get(f"{API}/connectors/dtnope/devices/").status_code == 404


# --- device list: filters and pagination -----------------------------------------------


@pytest.fixture
def fleet(connector, whitelist):
    """Five devices in three groups, one provisioned and one revoked."""
    groups = ["g1", "g1", "g2", "g2", "g3"]
    devices = [
        whitelist(connector, f"0000000{n}", tags=[{"name": "group", "value": group}])
        for n, group in enumerate(groups, start=1)
    ]
    Device.objects.filter(pk=devices[0].pk).update(status=Device.PROVISIONED)
    Device.objects.filter(pk=devices[4].pk).update(status=Device.REVOKED, tags=[])
    return devices


def identities(response):
    assert response.status_code == 200, response.content
    return sorted(device["identity"] for device in response.json()["results"])


def test_the_device_list_filters_by_status(api_client, connector, fleet):
    url = devices_url(connector)
    assert identities(api_client.get(url, {"status": "provisioned"})) == ["00000001"]
    assert identities(api_client.get(url, {"status": "whitelisted"})) == [
        "00000002",
        "00000003",
        "00000004",
    ]


def test_the_device_list_filters_by_tag_name_and_value(api_client, connector, fleet):
    url = devices_url(connector)
    assert identities(api_client.get(url, {"tag": "group:g2"})) == ["00000003", "00000004"]
    assert identities(api_client.get(url, {"tag": "group"})) == [
        "00000001",
        "00000002",
        "00000003",
        "00000004",
    ]
    assert identities(api_client.get(url, {"tag": "group:g9"})) == []
    assert identities(api_client.get(url, {"tag": "colour"})) == []
    assert identities(api_client.get(url, {"tag": "group:g1", "status": "whitelisted"})) == [
        "00000002"
    ]


def test_a_tag_value_may_itself_hold_colons(api_client, make_connector, whitelist):
    connector = make_connector()
    whitelist(connector, "dev-1", tags=[{"name": "url", "value": "http://x"}])
    assert identities(api_client.get(devices_url(connector), {"tag": "url:http://x"})) == ["dev-1"]


def test_the_device_list_searches_identities(api_client, connector, fleet, whitelist):
    whitelist(connector, "12345678")
    url = devices_url(connector)
    assert identities(api_client.get(url, {"search": "0000000"})) == [
        "00000001",
        "00000002",
        "00000003",
        "00000004",
        "00000005",
    ]
    assert identities(api_client.get(url, {"search": "345"})) == ["12345678"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "sleeping"}, "status"),
        ({"tag": ":g1"}, "tag"),
        ({"search": "x" * 201}, "search"),
    ],
)
def test_unknown_filter_values_are_400(api_client, connector, params, field):
    response = api_client.get(devices_url(connector), params)
    assert response.status_code == 400
    assert field in response.json()


def test_the_device_list_pages_with_cursors_over_every_device_once(api_client, connector, fleet):
    seen, url, pages = [], devices_url(connector) + "?page_size=2", 0
    while url:
        page = api_client.get(url).json()
        assert len(page["results"]) <= 2
        seen += [device["identity"] for device in page["results"]]
        url, pages = page["next"], pages + 1
    assert pages == 3
    assert seen == ["00000005", "00000004", "00000003", "00000002", "00000001"]


def test_a_page_size_outside_1_to_1000_is_400(api_client, connector, fleet):
    url = devices_url(connector)
    for size in ("10000000000000000000000", "1001", "-3", "many", "0", "null", "٣", ""):
        response = api_client.get(url, {"page_size": size})
        assert response.status_code == 400, size
        assert "page_size" in response.json()
    assert len(api_client.get(url, {"page_size": "1000"}).json()["results"]) == 5


def test_bad_and_forged_cursors_are_404(api_client, connector, fleet):
    url = devices_url(connector)
    assert api_client.get(url, {"cursor": "garbage!"}).status_code == 404
    for forged in ("p=abc", "p=1e5", "o=-1", "o=x", "r=x", "p=" + "9" * 40):
        cursor = base64.b64encode(forged.encode()).decode()
        assert api_client.get(url, {"cursor": cursor}).status_code == 404, forged


def test_a_next_cursor_is_a_position_not_an_offset(api_client, connector, fleet):
    page = api_client.get(devices_url(connector), {"page_size": 2}).json()
    cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
    decoded = parse_qs(base64.b64decode(cursor).decode())
    assert decoded["p"] == [str(fleet[3].pk)]


# --- one device: change, delete, reset, revoke -----------------------------------------


def test_patch_changes_name_and_tags_but_not_status(api_client, connector, whitelist):
    whitelist(connector, "00000001")
    response = api_client.patch(
        devices_url(connector, "00000001"),
        {"name": "Kitchen", "tags": [{"name": "room", "value": "kitchen"}], "status": "revoked"},
    )
    assert response.status_code == 200
    assert set(response.json()) == DEVICE_FIELDS
    device = Device.objects.get()
    assert device.name == "Kitchen"
    assert device.tags == [{"name": "room", "value": "kitchen"}]
    assert device.status == Device.WHITELISTED


def test_patch_with_bad_tags_is_400_and_changes_nothing(api_client, connector, whitelist):
    whitelist(connector, "00000001", tags=[{"name": "a", "value": "b"}])
    response = api_client.patch(devices_url(connector, "00000001"), {"tags": {"room": "x"}})
    assert response.status_code == 400
    assert "tags" in response.json()
    assert Device.objects.get().tags == [{"name": "a", "value": "b"}]


def test_delete_removes_the_device_and_logs_it(api_client, connector, whitelist):
    whitelist(connector, "00000001")
    assert api_client.delete(devices_url(connector, "00000001")).status_code == 204
    assert not Device.objects.exists()
    assert kinds(api_client, connector) == ["delete", "whitelist"]


def test_reset_brings_a_provisioned_device_back_with_a_fresh_window_and_no_token(
    api_client, connector, device_client, whitelist
):
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    response = api_client.post(
        devices_url(connector, "00000001", "reset"), {"activation_window_seconds": 3600}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "whitelisted"
    assert body["provisioned_at"] is None
    deadline = datetime.fromisoformat(body["activation_expires_at"])
    assert abs((deadline - timezone.now() - timedelta(hours=1)).total_seconds()) < 60
    assert device_client.write("myalias=1", f"Token {token}").status_code == 401
    assert not Credential.objects.filter(state=Credential.ACTIVE).exists()
    # A fresh window means the device can provision again.
    assert device_client.activate("00000001").status_code == 200


def test_reset_without_a_body_uses_the_connectors_window(api_client, connector, whitelist):
    whitelist(connector, "00000001", window_seconds=60)
    response = api_client.post(devices_url(connector, "00000001", "reset"))
    assert response.status_code == 200
    deadline = datetime.fromisoformat(response.json()["activation_expires_at"])
    assert abs((deadline - timezone.now() - timedelta(hours=24)).total_seconds()) < 60


def test_reset_with_a_bad_window_is_400_and_changes_nothing(api_client, connector, whitelist):
    device = whitelist(connector, "00000001")
    for window in (5, "tomorrow", 10**12):
        response = api_client.post(
            devices_url(connector, "00000001", "reset"), {"activation_window_seconds": window}
        )
        assert response.status_code == 400
    assert Device.objects.get().activation_expires_at == device.activation_expires_at
    assert not Event.objects.filter(kind=Event.RESET).exists()


def test_revoke_refuses_the_devices_token_from_then_on(
    api_client, connector, device_client, whitelist
):
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    assert device_client.write("myalias=1", f"Token {token}").status_code == 204
    response = api_client.post(devices_url(connector, "00000001", "revoke"))
    assert response.status_code == 200
    assert response.json()["status"] == "revoked"
    assert device_client.write("myalias=2", f"Token {token}").status_code == 401
    assert device_client.activate("00000001").status_code == 409
    assert kinds(api_client, connector, kind="revoke") == ["revoke"]


def test_actions_answer_only_post(api_client, connector, whitelist):
    whitelist(connector, "00000001")
    assert api_client.get(devices_url(connector, "00000001", "reset")).status_code == 405
    assert api_client.put(devices_url(connector, "00000001"), {}).status_code == 405


# --- resources ---------------------------------------------------------------------


def test_resources_can_be_defined_listed_changed_and_removed(api_client, connector):
    url = f"{API}/connectors/{connector.pk}/resources/"
    created = api_client.post(url, {"alias": "temperature", "format": "number"})
    assert created.status_code == 201
    assert created.json()["alias"] == "temperature"
    listed = api_client.get(url).json()["results"]
    assert [r["alias"] for r in listed] == ["myalias", "temperature"]
    changed = api_client.patch(f"{url}temperature/", {"format": "string"})
    assert changed.status_code == 200
    assert Resource.objects.get(alias="temperature").format == "string"
    renamed = api_client.patch(f"{url}temperature/", {"alias": "temp.c"})
    assert renamed.status_code == 200
    assert api_client.get(f"{url}temp.c/").json()["format"] == "string"
    assert api_client.delete(f"{url}temp.c/").status_code == 204
    assert api_client.get(f"{url}temp.c/").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"alias": "has space", "format": "number"}, "alias"),
        ({"alias": "x" * 65, "format": "number"}, "alias"),
        ({"alias": "ok", "format": "picture"}, "format"),
        ({"format": "number"}, "alias"),
    ],
)
def test_bad_resources_are_400(api_client, connector, body, field):
    response = api_client.post(f"{API}/connectors/{connector.pk}/resources/", body)
    assert response.status_code == 400
    assert field in response.json()
    assert Resource.objects.count() == 1


def test_defining_or_renaming_onto_a_defined_alias_is_409(api_client, connector):
    Resource.objects.create(connector=connector, alias="other")
    response = api_client.patch(
        f"{API}/connectors/{connector.pk}/resources/other/", {"alias": "myalias"}
    )
    assert response.status_code == 409
    assert response.json() == {"detail": "This connector already defines that alias."}
    again = api_client.post(
        f"{API}/connectors/{connector.pk}/resources/", {"alias": "myalias", "format": "string"}
    )
    assert again.status_code == 409
    assert Resource.objects.get(alias="myalias").format == "number"
    assert Resource.objects.filter(connector=connector).count() == 2


def test_a_defined_resource_stores_device_writes(api_client, connector, device_client, whitelist):
    api_client.post(
        f"{API}/connectors/{connector.pk}/resources/", {"alias": "humidity", "format": "number"}
    )
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    assert device_client.write("humidity=40", f"Token {token}").status_code == 204
    assert DataPoint.objects.get().alias == "humidity"


# --- events ------------------------------------------------------------------------------


def test_events_are_newest_first_and_filter_by_kind_and_identity(
    api_client, connector, device_client, whitelist
):
    whitelist(connector, "00000001")
    whitelist(connector, "00000002")
    device_client.activate("00000001")
    device_client.activate("0000003")  # wrong length: logged as presented
    assert kinds(api_client, connector) == [
        "provision_failed",
        "provision",
        "whitelist",
        "whitelist",
    ]
    assert kinds(api_client, connector, kind="whitelist") == ["whitelist", "whitelist"]
    assert kinds(api_client, connector, identity="00000001") == ["provision", "whitelist"]
    assert kinds(api_client, connector, identity="0000003") == ["provision_failed"]
    event = api_client.get(f"{API}/connectors/{connector.pk}/events/").json()["results"][0]
    assert set(event) == {"id", "identity", "kind", "reason", "actor", "source_ip", "created_at"}
    assert "expected exactly 8 decimal digits" in event["reason"]


def test_events_filter_by_since_as_iso_or_unix_seconds(api_client, connector, whitelist):
    whitelist(connector, "00000001")
    Event.objects.update(created_at=timezone.now() - timedelta(hours=2))
    whitelist(connector, "00000002")
    hour_ago = timezone.now() - timedelta(hours=1)
    for since in (
        hour_ago.isoformat(),
        hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ"),
        hour_ago.astimezone(UTC).replace(tzinfo=None).isoformat(),
        str(int(hour_ago.timestamp())),
        f"{hour_ago.timestamp():.3f}",
    ):
        response = api_client.get(f"{API}/connectors/{connector.pk}/events/", {"since": since})
        assert [e["identity"] for e in response.json()["results"]] == ["00000002"], since
    everything = api_client.get(f"{API}/connectors/{connector.pk}/events/", {"since": "0"})
    assert len(everything.json()["results"]) == 2


@pytest.mark.parametrize(
    "params, field",
    [
        ({"kind": "party"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-13-45T00:00:00"}, "since"),
        ({"since": "1" * 30}, "since"),
        ({"since": "-5"}, "since"),
    ],
)
def test_bad_event_filters_are_400(api_client, connector, params, field):
    response = api_client.get(f"{API}/connectors/{connector.pk}/events/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_events_page_with_cursors(api_client, connector, whitelist):
    for n in range(1, 6):
        whitelist(connector, f"0000000{n}")
    url = f"{API}/connectors/{connector.pk}/events/?page_size=3"
    first = api_client.get(url).json()
    second = api_client.get(first["next"]).json()
    assert [e["identity"] for e in first["results"] + second["results"]] == [
        f"0000000{n}" for n in range(5, 0, -1)
    ]
    assert second["next"] is None


# --- device data -------------------------------------------------------------------------


def test_data_points_are_listed_newest_first_with_alias_and_since_filters(
    api_client, make_connector, whitelist
):
    connector = make_connector(_resources={"temp": "number", "door": "boolean"})
    client = DeviceClient(connector)
    whitelist(connector, "dev-1")
    token = client.activate("dev-1").content.decode()
    assert client.write("temp=20&door=true", f"Token {token}").status_code == 204
    DataPoint.objects.update(created_at=timezone.now() - timedelta(hours=2))
    assert client.write("temp=21", f"Token {token}").status_code == 204

    url = f"{API}/connectors/{connector.pk}/devices/dev-1/data/"
    rows = api_client.get(url).json()["results"]
    assert [(r["alias"], r["value"]) for r in rows] == [
        ("temp", "21"),
        ("door", "true"),
        ("temp", "20"),
    ]
    assert set(rows[0]) == {"id", "alias", "value", "created_at"}
    only_temp = api_client.get(url, {"alias": "temp"}).json()["results"]
    assert [r["value"] for r in only_temp] == ["21", "20"]
    recent = api_client.get(url, {"since": str(int(time.time()) - 3600)}).json()["results"]
    assert [r["value"] for r in recent] == ["21"]
    assert api_client.get(url, {"since": "soon"}).status_code == 400
    assert api_client.get(f"{API}/connectors/{connector.pk}/devices/dev-2/data/").status_code == 404


# --- API tokens ----------------------------------------------------------------------


def test_a_new_api_token_is_shown_once_and_then_works(api_client, owner):
    response = api_client.post(f"{API}/tokens/", {"name": "ci"})
    assert response.status_code == 201
    body = response.json()
    token = body["token"]
    assert token.startswith(body["prefix"])
    row = ApiToken.objects.get(pk=body["id"])
    assert token not in row.token_hash
    listed = api_client.get(f"{API}/tokens/").json()["results"]
    assert {t["name"] for t in listed} == {"ci", "tests"}
    assert all("token" not in t and "token_hash" not in t for t in listed)

    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert fresh.get(f"{API}/connectors/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_a_deleted_token_stops_working(api_client):
    body = api_client.post(f"{API}/tokens/", {"name": "temporary"}).json()
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert api_client.delete(f"{API}/tokens/{body['id']}/").status_code == 204
    assert fresh.get(f"{API}/connectors/").status_code == 401


def test_users_cannot_see_or_delete_each_others_tokens(api_client, other_api_client, owner):
    owners_token = ApiToken.objects.get(user=owner)
    assert [t["name"] for t in other_api_client.get(f"{API}/tokens/").json()["results"]] == [
        "tests"
    ]
    assert other_api_client.delete(f"{API}/tokens/{owners_token.pk}/").status_code == 404
    assert ApiToken.objects.filter(pk=owners_token.pk).exists()


def test_a_token_name_that_is_too_long_is_400(api_client):
    response = api_client.post(f"{API}/tokens/", {"name": "x" * 101})
    assert response.status_code == 400
    assert ApiToken.objects.count() == 1


def test_create_api_token_prints_a_token_that_authenticates(owner, connector):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", "owner", "--name", "factory", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert token.startswith("gh_")
    assert "hash" in err.getvalue()
    row = ApiToken.objects.get(name="factory")
    assert row.user == owner
    assert token not in row.token_hash
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get(f"{API}/connectors/")
    assert [c["id"] for c in response.json()["results"]] == [connector.pk]


def test_create_api_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")
    assert not ApiToken.objects.exists()


# --- schema and docs --------------------------------------------------------------------


def test_the_openapi_schema_is_served(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/connectors/{connector_id}/devices/{identity}/reset" in schema["paths"]
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_the_docs_page_loads_its_assets_from_our_static_files(client, owner):
    client.force_login(owner)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "cdn" not in page.lower()
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), asset


def test_whitelisting_with_a_certificate_pins_it(api_client, connector):
    from tests.support.tls import fingerprint, make_certificate, pem

    issued = make_certificate("00000001")
    response = api_client.post(
        devices_url(connector), {"identity": "00000001", "certificate": pem(issued.cert)}
    )
    assert response.status_code == 201
    pinned = Credential.objects.get(device__identity="00000001")
    assert (pinned.kind, pinned.state) == ("certificate", "inactive")
    assert pinned.fingerprint == fingerprint(issued.cert)


@pytest.mark.parametrize("certificate", ["not a pem", "CN-MISMATCH"])
def test_whitelisting_with_a_bad_certificate_is_400_and_writes_nothing(
    api_client, connector, certificate
):
    from tests.support.tls import make_certificate, pem

    if certificate == "CN-MISMATCH":
        certificate = pem(make_certificate("00000002").cert)
    response = api_client.post(
        devices_url(connector), {"identity": "00000001", "certificate": certificate}
    )
    assert response.status_code == 400
    assert response.json()["certificate"]
    assert not Device.objects.exists()
    assert not Event.objects.exists()
