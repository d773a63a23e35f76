"""Samsung's ARTIK Cloud Python SDK (artikcloud 2.2.3), unchanged, against Gatehouse
behind nginx: only the SDK's configuration names the host, the device's access token
and its TLS client certificate, as a device maker would set them."""

import json

import pytest
from artikcloud import ApiClient, Configuration, DevicesApi, DeviceTypesApi, MessagesApi
from artikcloud.apis import UsersApi
from artikcloud.models import Message as SdkMessage
from artikcloud.rest import ApiException

from devices.models import Device
from registrations.models import Message
from tests.support.secure_devices import TlsDevice
from tests.support.tls import make_certificate

STEPS = {"stepCount": 100, "timeInBed": 200, "asleepTime": 10, "calories": 150}


@pytest.fixture
def device_files(device_certificate, tmp_path):
    return device_certificate.write(tmp_path, "device")


@pytest.fixture
def registered(secure_frontend, secure_connector, alice_browser, device_certificate, device_files):
    device = TlsDevice(secure_frontend, *device_files)
    return device.register(secure_connector, alice_browser, device_certificate)


def sdk(frontend, token: str, cert_file=None, key_file=None) -> ApiClient:
    """The SDK configured as its README says: host and access token, plus the TLS files."""
    configuration = Configuration()
    configuration.host = f"{frontend.url}/v1.1"
    configuration.access_token = token
    configuration.ssl_ca_cert = str(frontend.ca_file)
    configuration.cert_file = None if cert_file is None else str(cert_file)
    configuration.key_file = None if key_file is None else str(key_file)
    return ApiClient()


def error_of(exc: ApiException) -> dict:
    body = json.loads(exc.body)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == exc.status
    assert exc.headers["Content-Type"] == "application/json; charset=utf-8"
    return body["error"]


def test_every_device_side_call_of_the_sdk_works(
    secure_frontend, secure_connector, registered, device_files, alice
):
    client = sdk(secure_frontend, registered["accessToken"], *device_files)
    did = registered["did"]
    messages = MessagesApi(client)

    sent = messages.send_message(SdkMessage(data=STEPS, sdid=did, ts=1423179332000))
    later = messages.send_message(SdkMessage(data={"calories": 160}, sdid=did))
    assert Message.objects.get(mid=sent.data.mid).data == STEPS

    last = messages.get_last_normalized_messages(sdids=did, count=5)
    assert last.sdids == did and last.count == 5 and last.size == 2
    assert [m.mid for m in last.data] == [later.data.mid, sent.data.mid]
    first = last.data[1]
    assert first.data == STEPS and first.sdid == did and first.sdtid == secure_connector.pk
    assert first.ts == 1423179332000 and first.cts > first.ts
    assert first.uid == registered["uid"] and first.mv == 1
    only_steps = messages.get_last_normalized_messages(sdids=did, field_presence="stepCount")
    assert [m.mid for m in only_steps.data] == [sent.data.mid]

    device = DevicesApi(client).get_device(did).data
    assert (device.id, device.dtid, device.uid) == (did, secure_connector.pk, registered["uid"])
    assert device.name == "Hall thermostat" and device.created_on > 0

    device_type = DeviceTypesApi(client).get_device_type(secure_connector.pk).data
    assert (device_type.id, device_type.name) == (secure_connector.pk, "Acme Thermostat")


def test_a_device_sees_only_itself(
    secure_frontend, secure_connector, registered, device_files, device_ca, vendor
):
    client = sdk(secure_frontend, registered["accessToken"], *device_files)
    other_did = "0c9adcb292124f08955f11ea65c77e5d"
    calls = [
        lambda: DevicesApi(client).get_device(other_did),
        lambda: MessagesApi(client).get_last_normalized_messages(sdids=other_did),
        lambda: MessagesApi(client).get_last_normalized_messages(
            sdids=f"{registered['did']},{other_did}"
        ),
        lambda: MessagesApi(client).send_message(SdkMessage(data=STEPS, sdid=other_did)),
        lambda: DeviceTypesApi(client).get_device_type("dt" + "0" * 32),
    ]
    for call in calls:
        with pytest.raises(ApiException) as refused:
            call()
        assert error_of(refused.value)["code"] == 403
    assert not Message.objects.exists()


def test_the_sdk_without_a_token_a_revoked_token_or_a_certificate_is_refused(
    secure_frontend, registered, device_files, alice_browser, device_certificate
):
    did = registered["did"]
    cases = [
        (("", *device_files), 401),
        (("e542564a82a5441a8bf20cb8c74cc43f", *device_files), 401),
        ((registered["accessToken"],), 403),
    ]
    for configured, status in cases:
        # The SDK's configuration is one per process: each client is used as it is made.
        client = sdk(secure_frontend, *configured)
        with pytest.raises(ApiException) as refused:
            DevicesApi(client).get_device(did)
        assert error_of(refused.value)["code"] == status
        if status == 401:
            assert refused.value.headers["WWW-Authenticate"] == 'Bearer realm="device"'

    # The owner releases the device: its token stops working at once.
    device = Device.objects.get(secure__did=did)
    released = alice_browser.post(f"/my/devices/{device.pk}/release/")
    assert released.status_code == 302
    client = sdk(secure_frontend, registered["accessToken"], *device_files)
    with pytest.raises(ApiException) as refused:
        MessagesApi(client).send_message(SdkMessage(data=STEPS, sdid=did))
    assert error_of(refused.value)["code"] == 401
    assert not Message.objects.exists()


def test_calls_gatehouse_does_not_serve_answer_json_errors_not_pages(
    secure_frontend, registered, device_files
):
    client = sdk(secure_frontend, registered["accessToken"], *device_files)
    with pytest.raises(ApiException) as refused:
        UsersApi(client).get_user_properties(registered["uid"])
    assert error_of(refused.value) == {"code": 404, "message": "no such call"}
    # The calls of apps take an app's token, never a device's.
    with pytest.raises(ApiException) as refused:
        UsersApi(client).get_self()
    assert error_of(refused.value)["code"] == 401


def test_a_sibling_certificate_cannot_use_the_token(
    secure_frontend, registered, device_ca, tmp_path
):
    sibling = make_certificate("b2c3d4e5", issuer=device_ca)
    client = sdk(secure_frontend, registered["accessToken"], *sibling.write(tmp_path, "sibling"))
    with pytest.raises(ApiException) as refused:
        DevicesApi(client).get_device(registered["did"])
    assert error_of(refused.value)["code"] == 403
