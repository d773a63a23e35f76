"""The calls of companion apps under /v1.1/: Samsung's ARTIK Cloud Python SDK
(artikcloud 2.2.3), unchanged, with an OAuth 2.0 access token a user granted the app
through the real authorization-code flow with PKCE (docs/apps-and-hubs.md), and how
each call refuses what the token does not allow."""

import json
from datetime import timedelta

import pytest
from artikcloud import ApiClient, Configuration, DevicesApi, DeviceTypesApi, MessagesApi
from artikcloud.apis import RegistrationsApi, UsersApi
from artikcloud.models import DeviceRegConfirmUserRequest
from artikcloud.models import Message as SdkMessage
from artikcloud.rest import ApiException
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import AccessToken

from audit.models import Event
from devices.models import Device
from registrations.models import Message, Registration
from registrations.services.registration import public_user_id
from tests.support import oauth as flow
from tests.support.secure_devices import (
    REGISTRATIONS,
    SecureDeviceClient,
    TlsDevice,
    register,
    serial_suffix_of,
)
from tests.support.tls import make_certificate

STEPS = {"stepCount": 100, "calories": 150}
APP_REALM = 'Bearer realm="apps", error="invalid_token"'


@pytest.fixture
def app(owner):
    return flow.register(owner)


def sdk(frontend, token: str) -> ApiClient:
    """The SDK as its README configures it: the host and the access token (and the CA
    of the test server's TLS certificate, which is private)."""
    configuration = Configuration()
    configuration.host = f"{frontend.url}/v1.1"
    configuration.access_token = token
    configuration.ssl_ca_cert = str(frontend.ca_file)
    configuration.cert_file = configuration.key_file = None
    return ApiClient()


def error_of(exc: ApiException) -> dict:
    body = json.loads(exc.body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == exc.status
    assert exc.headers["Content-Type"] == "application/json; charset=utf-8"
    return body["error"]


def device_client(device_ca, name: str) -> SecureDeviceClient:
    return SecureDeviceClient(make_certificate(name, issuer=device_ca))


def tls_device(frontend, device_ca, tmp_path, name: str) -> tuple[TlsDevice, object]:
    """A device that calls through nginx with its own certificate."""
    issued = make_certificate(name, issuer=device_ca)
    return TlsDevice(frontend, *issued.write(tmp_path, name)), issued


def test_an_app_reads_the_user_their_devices_and_device_types_with_the_sdk(
    secure_frontend, secure_connector, device_ca, app, alice, alice_browser, tmp_path
):
    registered = []
    for n in range(3):
        device, issued = tls_device(secure_frontend, device_ca, tmp_path, f"a1b2c3d{n}")
        registered.append(device.register(secure_connector, alice_browser, issued, f"a1b2c3d{n}"))
    tokens = flow.tokens_for(alice_browser, app, "users:read devices:read")
    client = sdk(secure_frontend, tokens["access_token"])
    uid = public_user_id(alice)

    me = UsersApi(client).get_self().data
    assert (me.id, me.name, me.email) == (uid, "alice", "alice@example.com")
    assert me.created_on == int(alice.date_joined.timestamp() * 1000)

    first = UsersApi(client).get_user_devices(uid, offset=0, count=2)
    assert (first.total, first.offset, first.count) == (3, 0, 2)
    rest = UsersApi(client).get_user_devices(uid, offset=2, count=2)
    assert (rest.total, rest.offset, rest.count) == (3, 2, 1)
    listed = first.data.devices + rest.data.devices
    assert sorted(device.id for device in listed) == sorted(r["did"] for r in registered)
    assert {(d.uid, d.dtid, d.name) for d in listed} == {
        (uid, secure_connector.pk, "Hall thermostat")
    }

    did = registered[0]["did"]
    device = DevicesApi(client).get_device(did).data
    assert (device.id, device.uid, device.dtid) == (did, uid, secure_connector.pk)
    device_type = DeviceTypesApi(client).get_device_type(secure_connector.pk).data
    assert (device_type.id, device_type.name) == (secure_connector.pk, "Acme Thermostat")


def test_an_app_pairs_by_pin_then_sends_and_reads_messages_with_the_sdk(
    secure_frontend, secure_connector, device_ca, app, alice, alice_browser, tmp_path
):
    tokens = flow.tokens_for(alice_browser, app)
    client = sdk(secure_frontend, tokens["access_token"])
    device, _ = tls_device(secure_frontend, device_ca, tmp_path, "a1b2c3d4")
    body = {"deviceTypeId": secure_connector.pk, "vendorDeviceId": "a1b2c3d4"}
    started = device.call("POST", REGISTRATIONS, body).json()["data"]

    request = DeviceRegConfirmUserRequest(pin=started["pin"], device_name="Kitchen sensor")
    confirmed = RegistrationsApi(client).confirm_user(request).data
    assert confirmed.rid == started["rid"]
    registration = Registration.objects.get(rid=started["rid"])
    assert registration.user == alice and registration.device_name == "Kitchen sensor"

    completed = device.call("PUT", f"{REGISTRATIONS}/{started['rid']}", {"nonce": started["nonce"]})
    done = completed.json()["data"]
    did = done["did"]
    assert done["uid"] == public_user_id(alice)
    listed = UsersApi(client).get_user_devices(public_user_id(alice)).data.devices
    assert [(device.id, device.name) for device in listed] == [(did, "Kitchen sensor")]

    messages = MessagesApi(client)
    sent = messages.send_message(SdkMessage(sdid=did, data=STEPS, ts=1423179332000)).data
    later = messages.send_message(SdkMessage(sdid=did, data={"calories": 160})).data
    stored = Message.objects.get(mid=sent.mid)
    assert stored.device.secure.did == did and stored.data == STEPS

    last = messages.get_last_normalized_messages(sdids=did, count=5)
    assert (last.sdids, last.count, last.size) == (did, 5, 2)
    assert [m.mid for m in last.data] == [later.mid, sent.mid]
    assert last.data[1].data == STEPS and last.data[1].ts == 1423179332000
    assert last.data[1].uid == public_user_id(alice) and last.data[1].sdtid == secure_connector.pk

    now = int(timezone.now().timestamp() * 1000)
    page = messages.get_normalized_messages(
        sdid=did, start_date=now - 60_000, end_date=now + 60_000, count=1
    )
    assert (page.sdid, page.size, page.next) == (did, 1, sent.mid)
    assert [m.mid for m in page.data] == [sent.mid]
    following = messages.get_normalized_messages(
        sdid=did, start_date=now - 60_000, end_date=now + 60_000, count=1, offset=page.next
    )
    assert [m.mid for m in following.data] == [later.mid]
    earlier = messages.get_normalized_messages(sdid=did, start_date=0, end_date=now - 60_000)
    assert earlier.size == 0 and earlier.data == []


def test_a_token_is_refused_by_the_sdk_once_the_user_revokes_the_app(
    secure_frontend, app, alice_browser
):
    tokens = flow.tokens_for(alice_browser, app)
    client = sdk(secure_frontend, tokens["access_token"])
    assert UsersApi(client).get_self().data.name == "alice"
    assert alice_browser.post(f"/my/apps/{app.row.pk}/revoke/").status_code == 302
    with pytest.raises(ApiException) as refused:
        UsersApi(client).get_self()
    assert error_of(refused.value)["code"] == 401
    assert refused.value.headers["WWW-Authenticate"] == APP_REALM


# --- refusals, through the test client -----------------------------------------------


def call(token, method, path, body=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if body is None:
        return Client().generic(method, path, **headers)
    return Client().generic(method, path, json.dumps(body), "application/json", **headers)


def refused(response, status: int) -> str:
    assert response.status_code == status, response.content.decode()
    assert response["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status
    assert set(body["error"]) == {"code", "message"}
    return body["error"]["message"]


@pytest.fixture
def paired(secure_client, secure_connector, alice_browser):
    return register(secure_client, alice_browser, secure_connector)


@pytest.fixture
def bobs(device_ca, secure_connector, django_user_model):
    """Bob's device, paired in his browser (same device type as Alice's)."""
    bob = django_user_model.objects.create_user("bob", "bob@example.com")
    browser = Client()
    browser.force_login(bob)
    return register(device_client(device_ca, "b0b0b0b0"), browser, secure_connector, "b0b0b0b0")


def token(browser, app, scope=flow.ALL_SCOPES) -> str:
    return flow.tokens_for(browser, app, scope)["access_token"]


@pytest.mark.django_db
def test_each_call_needs_its_scope_and_changes_nothing_without_it(
    app, alice, alice_browser, paired, device_ca, secure_connector
):
    did, uid = paired["did"], public_user_id(alice)
    started = device_client(device_ca, "c1c2c3c4").initiate(secure_connector, "c1c2c3c4")
    pin = started.json()["data"]["pin"]
    cases = [
        ("devices:read", "GET", "/v1.1/users/self", None, "users:read"),
        ("users:read", "GET", f"/v1.1/users/{uid}/devices", None, "devices:read"),
        ("users:read", "GET", f"/v1.1/devices/{did}", None, "devices:read"),
        ("users:read", "GET", f"/v1.1/devicetypes/{secure_connector.pk}", None, "devices:read"),
        ("users:read", "GET", f"/v1.1/messages/last?sdids={did}", None, "devices:read"),
        ("users:read", "GET", f"/v1.1/messages?sdid={did}&startDate=0&endDate=1", None, None),
        ("devices:read", "POST", "/v1.1/messages", {"sdid": did, "data": STEPS}, None),
        ("devices:read", "PUT", "/v1.1/devices/registrations/pin", {"pin": pin, "name": "X"}, None),
    ]
    for scope, method, path, body, named in cases:
        message = refused(call(token(alice_browser, app, scope), method, path, body), 403)
        assert "scope" in message and (named is None or named in message)
    assert not Message.objects.exists()
    assert Registration.objects.get(rid=started.json()["data"]["rid"]).user is None


@pytest.mark.django_db
def test_another_users_devices_are_refused_as_if_they_did_not_exist(
    app, alice_browser, paired, bobs, secure_connector, vendor, device_ca
):
    mine = token(alice_browser, app)
    theirs, nobody = bobs["did"], "0c9adcb292124f08955f11ea65c77e5d"
    for did in (theirs, nobody):
        for method, path, body in [
            ("GET", f"/v1.1/devices/{did}", None),
            ("GET", f"/v1.1/messages/last?sdids={did}", None),
            ("GET", f"/v1.1/messages/last?sdids={paired['did']},{did}", None),
            ("GET", f"/v1.1/messages?sdid={did}&startDate=0&endDate=1", None),
            ("POST", "/v1.1/messages", {"sdid": did, "data": STEPS}),
        ]:
            refused(call(mine, method, path, body), 404)
    assert refused(call(mine, "GET", f"/v1.1/users/{bobs['uid']}/devices"), 403)
    assert refused(
        call(mine, "GET", f"/v1.1/messages?uid={bobs['uid']}&startDate=0&endDate=1"), 403
    )
    # A device type Alice has no device of is unknown to her app.
    other_type = type(secure_connector).objects.create(name="Other", owner=vendor)
    refused(call(mine, "GET", f"/v1.1/devicetypes/{other_type.pk}"), 404)
    assert not Message.objects.exists()
    # Her list holds only her own device.
    listed = call(mine, "GET", f"/v1.1/users/{paired['uid']}/devices").json()
    assert [device["id"] for device in listed["data"]["devices"]] == [paired["did"]]


@pytest.mark.django_db
def test_unknown_expired_and_revoked_tokens_are_401(app, alice_browser, paired, secure_client):
    expired = token(alice_browser, app)
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    revoked = token(alice_browser, app)
    assert alice_browser.post(f"/my/apps/{app.row.pk}/revoke/").status_code == 302
    for presented in (expired, revoked, "gha_" + "x" * 43):
        for path in ("/v1.1/users/self", f"/v1.1/devices/{paired['did']}"):
            response = call(presented, "GET", path)
            refused(response, 401)
            assert response["WWW-Authenticate"] == APP_REALM
    # A device's token on an app's call, and no token at all.
    refused(call(paired["accessToken"], "GET", "/v1.1/users/self"), 401)
    refused(Client().get("/v1.1/users/self"), 401)


@pytest.mark.django_db
def test_wrong_pins_from_an_app_count_against_the_users_pairing_limit(
    app, alice, alice_browser, secure_client, secure_connector, device_certificate, settings
):
    settings.RATE_LIMIT_PAIRING_FAILURES = "3/900"
    mine = token(alice_browser, app, "devices:pair")
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    wrong = "22222222" if started["pin"] != "22222222" else "33333333"
    pin_path = "/v1.1/devices/registrations/pin"

    # Bad input spends no guess.
    refused(call(mine, "PUT", pin_path, {"pin": "0O1IL", "name": "X"}), 400)
    refused(call(mine, "PUT", pin_path, {"pin": started["pin"]}), 400)
    refused(call(mine, "PUT", pin_path, {"pin": started["pin"], "name": "X", "deviceId": "d"}), 400)
    # The right PIN under another device type is a wrong guess.
    body = {"pin": started["pin"], "name": "X", "deviceTypeId": "dt" + "0" * 32}
    refused(call(mine, "PUT", pin_path, body), 404)
    for _ in range(2):
        refused(call(mine, "PUT", pin_path, {"pin": wrong, "name": "X"}), 404)
    answer = call(mine, "PUT", pin_path, {"pin": started["pin"], "name": "X"})
    refused(answer, 429)
    assert int(answer["Retry-After"]) > 0
    # The same budget as the pairing page's.
    page = alice_browser.post(
        "/pair/", {"pin": started["pin"], "serial_suffix": serial_suffix_of(device_certificate)}
    )
    assert page.status_code == 429
    registration = Registration.objects.get(rid=started["rid"])
    assert (
        registration.user is None and registration.status == Registration.PENDING_USER_CONFIRMATION
    )


@pytest.mark.django_db
def test_a_right_pin_pairs_once_and_a_locked_request_refuses_the_app(
    app, alice, alice_browser, secure_client, secure_connector, device_ca, settings
):
    settings.PAIRING_MAX_ATTEMPTS = 2
    mine = token(alice_browser, app, "devices:pair")
    pin_path = "/v1.1/devices/registrations/pin"
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    body = {
        "pin": started["pin"].lower(),
        "name": "  Hall  lamp ",
        "deviceTypeId": secure_connector.pk,
    }
    answer = call(mine, "PUT", pin_path, body)
    assert answer.status_code == 200 and answer.json() == {"data": {"rid": started["rid"]}}
    registration = Registration.objects.get(rid=started["rid"])
    assert registration.user == alice and registration.device_name == "Hall lamp"
    logged = Event.objects.filter(reason__contains=f"{started['rid']} confirmed").get()
    assert "by user alice from app 'Acme Home' as 'Hall lamp'" in logged.reason
    # Confirmed, it waits for the device: no longer for a PIN.
    refused(call(mine, "PUT", pin_path, body), 404)

    # Wrong serial digits with the PIN in the browser lock the request; the app is
    # refused with the right PIN too.
    other = device_client(device_ca, "a1b2c3d5")
    locked = other.initiate(secure_connector, "a1b2c3d5").json()["data"]
    for _ in range(2):
        alice_browser.post("/pair/", {"pin": locked["pin"], "serial_suffix": "0000"})
    assert Registration.objects.get(rid=locked["rid"]).locked_at is not None
    refused(call(mine, "PUT", pin_path, {"pin": locked["pin"], "name": "X"}), 410)


@pytest.mark.django_db
def test_bad_queries_and_bodies_are_400_and_devices_keep_their_calls(
    app, alice_browser, paired, secure_client
):
    mine, did = token(alice_browser, app), paired["did"]
    for path in [
        f"/v1.1/messages?sdid={did}&startDate=5&endDate=1",
        f"/v1.1/messages?sdid={did}&startDate=0",
        f"/v1.1/messages?sdid={did}&startDate=0&endDate=1&order=sideways",
        f"/v1.1/messages?sdid={did}&startDate=0&endDate=1&filter=x",
        f"/v1.1/messages?sdid={did}&startDate=0&endDate=1&offset=0c9adcb292124f08955f11ea65c77e5d",
        f"/v1.1/users/{paired['uid']}/devices?count=0",
        "/v1.1/messages/last?sdids=",
    ]:
        refused(call(mine, "GET", path), 400)
    for body in [{"sdid": did}, {"sdid": did, "data": STEPS, "ts": -1}, {"data": STEPS}]:
        refused(call(mine, "POST", "/v1.1/messages", body), 400)
    nul = call(mine, "GET", "/v1.1/messages?sdid=%00&startDate=0&endDate=1")
    assert nul.status_code == 400 and nul.json()["error"]["code"] == 400
    pin = {"pin": "QJ39NCBP", "name": "a\u0000b"}
    refused(call(mine, "PUT", "/v1.1/devices/registrations/pin", pin), 400)
    assert not Message.objects.exists()
    # The same paths still serve the device with its own token and certificate.
    device = secure_client.get(
        f"/v1.1/devices/{did}",
        **secure_client._extra({"HTTP_AUTHORIZATION": f"bearer {paired['accessToken']}"}),
    )
    assert device.status_code == 200 and device.json()["data"]["id"] == did
    assert Device.objects.get(secure__did=did).owner.username == "alice"
