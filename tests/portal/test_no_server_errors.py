"""Inputs once seen to answer 500 get a clear 4xx and change nothing.

PostgreSQL refuses NUL characters in text, so most of these failed there only;
they run on both databases.
"""

import logging

import pytest
from django.conf import settings
from django.test import Client, override_settings

from audit.models import Event
from connectors.models import Resource
from core.errors import Refusal, status_for
from devices.models import DataPoint, Device
from registrations.models import Message
from tests.support.clients import DeviceClient, basic
from tests.support.secure_devices import REGISTRATIONS, pair, serial_suffix_of

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"


def _client(connector=None) -> Client:
    # A server error comes back as a response (as a device would see it), not an exception.
    if connector is not None:
        return DeviceClient(connector, raise_request_exception=False)
    return Client(raise_request_exception=False)


def _events() -> list:
    return list(Event.objects.values_list("pk", flat=True))


def test_a_nul_in_an_activation_id_is_400(connector, whitelist):
    whitelist(connector, "00000001")
    client = _client(connector)
    before = _events()
    for identity in ("0000000%00", "%00", "00000001%00"):
        response = client.activate(identity)
        assert response.status_code == 400, identity
        assert b"NUL characters are not allowed" in response.content
    assert _events() == before
    assert Device.objects.get().status == Device.WHITELISTED


def test_a_nul_in_an_alias_or_a_value_is_400_and_stores_nothing(connector, whitelist):
    Resource.objects.create(connector=connector, alias="note", format=Resource.STRING)
    whitelist(connector, "00000001")
    client = _client(connector)
    token = client.activate("00000001").content.decode()
    before = _events()
    for body in ("my%00alias=1", "myalias=1%00", "note=a%00b", "%00=%00"):
        response = client.write(body, f"Token {token}")
        assert response.status_code == 400, body
        assert b"NUL characters are not allowed in form fields" in response.content
    assert not DataPoint.objects.exists()
    assert _events() == before


def test_a_nul_in_a_basic_user_or_password_is_401(make_connector, whitelist):
    connector = make_connector(auth_mode="password", _resources={"myalias": "number"})
    client = _client(connector)
    whitelist(connector, "dev-1")
    assert client.activate("dev-1", PASSWORD).status_code == 204
    for user, password in (
        ("dev-1\x00", PASSWORD),
        ("\x00", PASSWORD),
        ("dev-1", PASSWORD + "\x00"),
    ):
        response = client.write("myalias=1", basic(user, password))
        assert response.status_code == 401, (user, password)
    assert not DataPoint.objects.exists()
    # The refusals are logged, without the NUL the database would refuse.
    assert Event.objects.filter(kind=Event.AUTH_FAILED).count() == 3


def test_a_deeply_nested_json_value_is_400(make_connector, whitelist):
    connector = make_connector(_resources={"settings": Resource.JSON})
    client = _client(connector)
    whitelist(connector, "dev-1")
    token = client.activate("dev-1").content.decode()
    for depth in (5000, 65):
        response = client.write("settings=" + "[" * depth + "]" * depth, f"Token {token}")
        assert response.status_code == 400, depth
    assert client.write("settings=" + "[" * 64 + "]" * 64, f"Token {token}").status_code == 204
    assert DataPoint.objects.count() == 1


def test_a_nul_in_a_pki_path_is_404():
    assert _client().get("/pki/%00/ca.pem").status_code == 404
    assert _client().get("/pki/%00/crl").status_code == 404


def test_pki_files_of_a_malformed_connector_id_are_404_behind_the_url_guard_too():
    middleware = [m for m in settings.MIDDLEWARE if not m.endswith("RejectNulMiddleware")]
    with override_settings(MIDDLEWARE=middleware):
        for path in ("/pki/%00/ca.pem", "/pki/%00/crl", "/pki/not-a-connector/crl.pem"):
            assert _client().get(path).status_code == 404, path


@pytest.mark.parametrize(
    "query", ["status=%00", "q=%00", "connector__id__exact=%00", "o=%00", "%00=1"]
)
def test_a_nul_in_an_admin_list_filter_or_search_is_400(admin_client, query):
    admin_client.raise_request_exception = False
    for model in ("devices/device", "audit/event", "connectors/connector"):
        response = admin_client.get(f"/admin/{model}/?{query}")
        assert response.status_code == 400, (model, query)


@pytest.mark.parametrize(
    "path, status",
    [
        ("/%00", 404),
        ("/admin/devices/device/%00/change/", 404),
        ("/timestamp?%00", 400),
        ("/login/?next=%00", 400),
    ],
)
def test_a_nul_anywhere_in_a_url_is_refused_with_a_clear_message(path, status):
    response = _client().get(path)
    assert response.status_code == status
    assert response.content == b"NUL characters are not allowed in URLs\n"
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path, status",
    [
        ("/api/v1/connectors/%00/", 404),
        ("/api/v1/connectors/?cursor=%00", 400),
        ("/api/v1/tokens/?%00=1", 400),
        ("/api/schema/?format=%00", 400),
    ],
)
def test_a_nul_in_a_management_api_url_is_refused_in_json_as_documented(api_client, path, status):
    """The management API documents JSON refusals; a NUL is refused before any view runs."""
    api_client.raise_request_exception = False
    response = api_client.get(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "NUL characters are not allowed in URLs"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/connectors/dt0/certificates/generate?topics=%00",
        "/c/dt0/foundry/certificates/generate?topics=%00",
    ],
)
def test_a_nul_in_a_foundry_url_is_refused_in_the_foundry_envelope(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    message = "NUL characters are not allowed in URLs"
    assert response.json() == {"error": {"code": 400, "message": message}}


def test_every_secure_call_under_the_connector_path_prefix_works(
    secure_connector, secure_client, alice_browser
):
    """Registration, status, completion and messages under /c/<connector-id>/v1.1/…"""
    prefix = f"/c/{secure_connector.pk}"
    secure_client.raise_request_exception = False
    started = secure_client.send_json(
        "POST",
        prefix + REGISTRATIONS,
        {"deviceTypeId": secure_connector.pk, "vendorDeviceId": "a1b2c3d4"},
    )
    assert started.status_code == 200, started.content
    data = started.json()["data"]
    status = secure_client.get(
        f"{prefix}{REGISTRATIONS}/{data['rid']}/status", **secure_client._extra({})
    )
    assert status.json() == {"data": {"status": "PENDING_USER_CONFIRMATION"}}
    paired = pair(
        alice_browser, secure_connector, data["pin"], serial_suffix_of(secure_client.issued)
    )
    assert paired.status_code == 302
    done = secure_client.send_json(
        "PUT", f"{prefix}{REGISTRATIONS}/{data['rid']}", {"nonce": data["nonce"]}
    )
    assert done.status_code == 200, done.content
    token, did = done.json()["data"]["accessToken"], done.json()["data"]["did"]
    sent = secure_client.send_json(
        "POST",
        f"{prefix}/v1.1/message",
        {"sdid": did, "data": {"temperature": 21}},
        HTTP_AUTHORIZATION=f"bearer {token}",
    )
    assert sent.status_code == 200, sent.content
    assert Message.objects.get().data == {"temperature": 21}
    # Refusals under the prefix are the secure API's JSON errors, not server errors.
    unknown = secure_client.get(
        f"{prefix}{REGISTRATIONS}/{'0' * 32}/status", **secure_client._extra({})
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == 404


@pytest.mark.parametrize(
    "data",
    [
        '{"temperature": "x\\u0000"}',
        '{"x\\u0000": 1}',
        '{"text": "\\ud800"}',
        "[" * 65 + "]" * 65,
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_secure_message_with_unstorable_json_is_400(
    secure_connector, secure_client, alice_browser, data
):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    pair(alice_browser, secure_connector, started["pin"], serial_suffix_of(secure_client.issued))
    done = secure_client.complete(started["rid"], started["nonce"]).json()["data"]
    secure_client.raise_request_exception = False
    body = f'{{"sdid": "{done["did"]}", "data": {data}}}'
    response = secure_client.send_json(
        "POST", "/v1.1/message", body, HTTP_AUTHORIZATION=f"bearer {done['accessToken']}"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == 400
    assert not Message.objects.exists()


def test_a_nul_in_a_registration_request_is_400(secure_connector, secure_client):
    secure_client.raise_request_exception = False
    for body in (
        {"deviceTypeId": "dt\x00", "vendorDeviceId": "a1b2c3d4"},
        {"deviceTypeId": secure_connector.pk, "vendorDeviceId": "a1b2\x00"},
    ):
        response = secure_client.send_json("POST", REGISTRATIONS, body)
        assert response.status_code == 400, response.content
    response = secure_client.send_json("PUT", f"{REGISTRATIONS}/{'0' * 32}", {"nonce": "\x00"})
    assert response.status_code == 400


class UnlistedRefusal(Refusal):
    """A refusal no table lists."""


def test_a_refusal_no_table_lists_is_a_400_and_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="core.errors"):
        assert status_for(UnlistedRefusal(), {}) == 400
    assert "UnlistedRefusal has no status listed" in caplog.text
    # The nearest listed class decides.
    assert status_for(UnlistedRefusal(), {Refusal: 409}) == 409
