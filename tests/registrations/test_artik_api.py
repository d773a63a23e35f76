"""The ARTIK device API under /v1.1/: the calls a registered device makes with its
access token, and how every path refuses (always ARTIK's JSON error, never a page)."""

import json
from urllib.parse import quote

import pytest
from django.test import Client, override_settings

from core import redis_scripts
from devices import services as device_services
from devices.models import Device
from registrations.models import Message
from tests.support.processes import free_port
from tests.support.secure_devices import REGISTRATIONS, register

pytestmark = pytest.mark.django_db

JSON_UTF8 = "application/json; charset=utf-8"


@pytest.fixture
def registered(secure_client, secure_connector, alice_browser):
    return register(secure_client, alice_browser, secure_connector)


def as_device(client, registered, method, path, body=None, **extra):
    extra.setdefault("HTTP_AUTHORIZATION", f"bearer {registered['accessToken']}")
    if body is None and method == "GET":
        return client.get(path, **client._extra(extra))
    return client.send_json(method, path, body, **extra)


def assert_error(response, status: int) -> str:
    assert response.status_code == status
    assert response["Content-Type"] == JSON_UTF8
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == status
    assert set(body["error"]) == {"code", "message"}
    return body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1.1/nowhere"),
        ("POST", "/v1.1/cert/devices"),
        ("DELETE", "/v1.1/messages/last/extra"),
        # The user side of ARTIK beyond the calls of apps (test_artik_user_api.py).
        ("GET", "/v1.1/users/self/properties"),
        ("GET", "/v1.1/users/0c9adcb292124f08955f11ea65c77e5d/rules"),
        ("GET", "/v1.1/devices/registrations/pin/extra"),
        ("POST", "/v1.1/accounts/token"),
        ("GET", "/v1.1/devices/0c9adcb292124f08955f11ea65c77e5d/status"),
        ("PROPFIND", "/v1.1/"),
    ],
)
def test_every_unknown_path_is_a_json_404(secure_client, method, path):
    response = secure_client.generic(method, path)
    assert assert_error(response, 404) == "no such call"


def test_a_nul_in_the_path_or_query_is_refused_in_json(secure_client, registered):
    in_path = secure_client.get("/v1.1/devices/%00")
    in_query = as_device(secure_client, registered, "GET", "/v1.1/messages/last?sdids=%00")
    for response, status in ((in_path, 404), (in_query, 400)):
        assert response.status_code == status
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"]["code"] == status


def test_a_nul_in_the_body_is_400_and_stores_nothing(secure_client, registered):
    body = {"sdid": registered["did"], "data": {"note": "a\u0000b"}}
    assert "NUL" in assert_error(
        as_device(secure_client, registered, "POST", "/v1.1/messages", body), 400
    )
    assert not Message.objects.exists()


def test_a_certificate_header_not_from_the_proxy_is_ignored(
    registered, device_certificate, settings
):
    forged = Client(REMOTE_ADDR="192.0.2.7").get(
        f"/v1.1/devices/{registered['did']}",
        HTTP_AUTHORIZATION=f"bearer {registered['accessToken']}",
        HTTP_X_SSL_CLIENT_CERT=quote(device_certificate.cert_pem),
        HTTP_X_GATEHOUSE_PROXY_SECRET=settings.PROXY_SHARED_SECRET,
    )
    assert "certificate" in assert_error(forged, 403)


@pytest.mark.parametrize(
    "authorization", ["", "bearer", "bearer \x00", "Basic eDp5", "bearer " + "a" * 5000]
)
def test_a_missing_or_forged_token_is_401_with_the_bearer_challenge(
    secure_client, registered, authorization
):
    response = as_device(
        secure_client,
        registered,
        "GET",
        f"/v1.1/devices/{registered['did']}",
        HTTP_AUTHORIZATION=authorization,
    )
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="device"'


def test_a_revoked_device_is_401(secure_client, registered):
    device_services.revoke_device(Device.objects.get(secure__did=registered["did"]))
    response = as_device(secure_client, registered, "GET", f"/v1.1/devices/{registered['did']}")
    assert_error(response, 401)


@pytest.mark.parametrize(
    "extra",
    [{"type": "action"}, {"ts": -1}, {"ts": 10**16}, {"ts": "soon"}, {"ts": 1.5}],
)
def test_a_message_the_dialect_cannot_take_is_400(secure_client, registered, extra):
    body = {"sdid": registered["did"], "data": {"a": 1}, **extra}
    assert_error(as_device(secure_client, registered, "POST", "/v1.1/messages", body), 400)
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "query", ["", "?count=1", "?sdids=x&count=0", "?sdids=x&count=101", "?sdids=x&count=a"]
)
def test_a_bad_last_messages_query_is_400(secure_client, registered, query):
    response = as_device(secure_client, registered, "GET", f"/v1.1/messages/last{query}")
    assert_error(response, 400)


def test_a_wrong_method_is_a_json_405_naming_the_methods(secure_client, registered):
    response = as_device(secure_client, registered, "POST", "/v1.1/messages/last", {})
    assert_error(response, 405)
    assert response["Allow"] == "GET, HEAD, OPTIONS"


def test_the_answer_is_json_whatever_the_device_accepts(secure_client, registered):
    response = as_device(
        secure_client,
        registered,
        "GET",
        f"/v1.1/devices/{registered['did']}",
        HTTP_ACCEPT="text/html",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == JSON_UTF8
    assert response.content.startswith(b'{"data":{"id":')


def test_messages_and_message_share_one_quota(secure_client, registered, settings):
    settings.RATE_LIMIT_MESSAGES = "2/60"
    body = {"sdid": registered["did"], "data": {"n": 1}}
    assert as_device(secure_client, registered, "POST", "/v1.1/message", body).status_code == 200
    assert as_device(secure_client, registered, "POST", "/v1.1/messages", body).status_code == 200
    refused = as_device(secure_client, registered, "POST", "/v1.1/messages", body)
    assert_error(refused, 429)
    assert refused["X-Rate-Limit-Remaining"] == "0/0" and int(refused["Retry-After"]) >= 1
    assert Message.objects.count() == 2


def test_a_device_reads_only_messages_sent_since_it_became_its_owners(
    secure_client, registered, secure_connector
):
    body = {"sdid": registered["did"], "data": {"n": 1}}
    as_device(secure_client, registered, "POST", "/v1.1/messages", body)
    last = as_device(
        secure_client, registered, "GET", f"/v1.1/messages/last?sdids={registered['did']}"
    ).json()
    assert last["size"] == 1 and last["data"][0]["data"] == {"n": 1}
    Message.objects.update(created_at=Device.objects.get().secure.registered_at.replace(year=2000))
    last = as_device(
        secure_client, registered, "GET", f"/v1.1/messages/last?sdids={registered['did']}"
    ).json()
    assert last["size"] == 0 and last["data"] == []


@pytest.mark.parametrize("prefix", ["/c/{connector}", ""])
def test_the_calls_answer_under_the_connector_prefix_and_on_the_device_host(
    secure_client, registered, secure_connector, prefix
):
    extra = {} if prefix else {"HTTP_HOST": secure_connector.device_host}
    path = prefix.format(connector=secure_connector.pk) + f"/v1.1/devicetypes/{secure_connector.pk}"
    response = as_device(secure_client, registered, "GET", path, **extra)
    assert response.status_code == 200
    assert json.loads(response.content)["data"]["id"] == secure_connector.pk
    missing = as_device(secure_client, registered, "GET", path.replace("devicetypes", "x"), **extra)
    assert_error(missing, 404)


def test_registration_answers_still_refuse_in_json(secure_client):
    assert_error(secure_client.send_json("POST", REGISTRATIONS, "[]"), 400)


def test_a_device_call_while_redis_is_down_is_a_json_503_and_stores_nothing(
    secure_client, registered
):
    closed = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    body = {"sdid": registered["did"], "data": {"n": 1}}
    with override_settings(CACHES=closed):
        redis_scripts.close_connection()
        try:
            for method, path in (("POST", "/v1.1/messages"), ("GET", "/v1.1/messages/last")):
                response = as_device(secure_client, registered, method, path, body)
                assert response.status_code == 503
                assert response["Retry-After"] == "5"
                assert response.json()["error"]["code"] == 503
        finally:
            redis_scripts.close_connection()
    assert not Message.objects.exists()
