"""Secure messages (docs/secure-registration.md): POST /v1.1/message with token and certificate,
rate-limit headers, and where messages can be read afterwards."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import Event
from registrations.models import Message
from registrations.tasks import purge_old_records
from tests.support.clients import bearer_client
from tests.support.secure_devices import SecureDeviceClient, register
from tests.support.tls import make_ca, make_certificate

pytestmark = pytest.mark.django_db

STEPS = {"stepCount": 100, "timeInBed": 200, "asleepTime": 10, "calories": 150}


@pytest.fixture
def registered(secure_client, secure_connector, alice_browser):
    return register(secure_client, alice_browser, secure_connector)


def test_a_message_is_stored_and_answered_with_its_mid_and_rate_limits(secure_client, registered):
    response = secure_client.message(registered["accessToken"], registered["did"], STEPS)
    assert response.status_code == 200
    mid = response.json()["data"]["mid"]
    assert response.json() == {"data": {"mid": mid}}
    message = Message.objects.get(mid=mid)
    assert message.data == STEPS and message.channel == Message.REST
    assert response["X-Rate-Limit-Limit"] == "100/1000"
    assert response["X-Rate-Limit-Remaining"] == "99/999"
    minute_reset, day_reset = (int(part) for part in response["X-Rate-Limit-Reset"].split("/"))
    now = time.time()
    assert now < minute_reset <= now + 61 and day_reset % 86400 == 0 and day_reset > now
    assert Event.objects.filter(kind="message", reason__contains=mid).count() == 1


def test_the_seed_scheme_name_bearer_is_case_insensitive(secure_client, registered):
    response = secure_client.message(
        registered["accessToken"],
        registered["did"],
        {"a": 1},
        HTTP_AUTHORIZATION=f"Bearer {registered['accessToken']}",
    )
    assert response.status_code == 200


def test_without_the_certificate_a_secure_device_gets_403(registered):
    response = SecureDeviceClient(None).message(registered["accessToken"], registered["did"], {})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == 403
    assert not Message.objects.exists()


def test_the_token_with_another_trusted_certificate_is_403(device_ca, registered):
    sibling = SecureDeviceClient(make_certificate("thermostat-other", issuer=device_ca))
    response = sibling.message(registered["accessToken"], registered["did"], STEPS)
    assert response.status_code == 403
    assert not Message.objects.exists()
    assert Event.objects.filter(kind="auth_failed", reason__contains="another certificate")


def test_the_same_certificate_from_another_ca_is_refused(registered):
    stranger = SecureDeviceClient(make_certificate("x", issuer=make_ca("Other CA")))
    response = stranger.message(registered["accessToken"], registered["did"], STEPS)
    assert response.status_code == 403


@pytest.mark.parametrize("authorization", ["", "bearer", "bearer nope", "Token abc", "Basic x"])
def test_a_missing_or_wrong_token_is_401(secure_client, registered, authorization):
    response = secure_client.message(
        "unused", registered["did"], STEPS, HTTP_AUTHORIZATION=authorization
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_the_access_token_does_not_work_on_the_plain_data_api(registered, secure_connector):
    response = Client(HTTP_HOST=secure_connector.device_host).post(
        "/api:v1/stack/alias",
        "a=1",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Token {registered['accessToken']}",
    )
    assert response.status_code == 401


def test_a_message_for_another_device_is_403(secure_client, registered):
    response = secure_client.message(registered["accessToken"], "f" * 32, STEPS)
    assert response.status_code == 403
    assert "sdid" in response.json()["error"]["message"]
    assert not Message.objects.exists()


@pytest.mark.parametrize("body", ["{nope", "[]", '{"sdid": null}', '{"data": null}'])
def test_malformed_messages_are_400(secure_client, registered, body):
    response = secure_client.send_json(
        "POST",
        "/v1.1/message",
        body,
        HTTP_AUTHORIZATION=f"bearer {registered['accessToken']}",
    )
    assert response.status_code == 400
    assert not Message.objects.exists()


def test_too_many_messages_are_429_with_the_quota_headers(secure_client, registered, settings):
    settings.RATE_LIMIT_MESSAGES = "2/60"
    token, did = registered["accessToken"], registered["did"]
    assert secure_client.message(token, did, {"n": 1})["X-Rate-Limit-Remaining"] == "1/999"
    assert secure_client.message(token, did, {"n": 2})["X-Rate-Limit-Remaining"] == "0/998"
    response = secure_client.message(token, did, {"n": 3})
    assert response.status_code == 429
    assert response["X-Rate-Limit-Limit"] == "2/1000"
    assert response["X-Rate-Limit-Remaining"] == "0/0"
    assert int(response["Retry-After"]) >= 1
    assert Message.objects.count() == 2


def test_the_daily_allowance_is_counted_too(secure_client, registered, settings):
    settings.RATE_LIMIT_MESSAGES_DAILY = "1/86400"
    token, did = registered["accessToken"], registered["did"]
    assert secure_client.message(token, did, {"n": 1}).status_code == 200
    assert secure_client.message(token, did, {"n": 2}).status_code == 429


def test_the_management_api_lists_a_devices_messages_for_its_admins(
    secure_client, registered, secure_connector, vendor, other_user
):
    for number in range(3):
        secure_client.message(registered["accessToken"], registered["did"], {"n": number})
    url = f"/api/v1/connectors/{secure_connector.pk}/devices/a1b2c3d4/messages/"
    response = bearer_client(vendor).get(url)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [row["data"] for row in results] == [{"n": 2}, {"n": 1}, {"n": 0}]
    assert set(results[0]) == {"mid", "data", "channel", "source_ip", "created_at"}
    assert bearer_client(other_user).get(url).status_code == 404
    assert bearer_client(vendor).get(url + "?since=nonsense").status_code == 400


def test_the_owner_sees_messages_on_their_device_page(secure_client, registered, alice_browser):
    secure_client.message(registered["accessToken"], registered["did"], {"stepCount": 4242})
    device_id = Message.objects.get().device_id
    page = alice_browser.get(f"/my/devices/{device_id}/").content.decode()
    assert "stepCount" in page and "4242" in page


def test_the_connector_admin_sees_owner_and_messages_on_the_device_page(
    secure_client, registered, secure_connector, vendor
):
    secure_client.message(registered["accessToken"], registered["did"], {"stepCount": 4242})
    device_id = Message.objects.get().device_id
    admin = Client()
    admin.force_login(vendor)
    page = admin.get(f"/connectors/{secure_connector.pk}/devices/{device_id}/").content.decode()
    assert "Secure registration" in page and registered["did"] in page
    assert "alice" in page and "4242" in page


def test_messages_past_the_data_retention_are_purged_daily(secure_client, registered, settings):
    settings.DATA_RETENTION_DAYS = 30
    for number in range(3):
        secure_client.message(registered["accessToken"], registered["did"], {"n": number})
    Message.objects.filter(data={"n": 0}).update(created_at=timezone.now() - timedelta(days=31))
    assert purge_old_records.apply().get()["message"] == 1
    assert sorted(row["n"] for row in Message.objects.values_list("data", flat=True)) == [1, 2]
