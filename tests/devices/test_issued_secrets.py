"""Secrets Gatehouse gives a device at registration, for firmware that is given its
credential at the factory: shown once, stored hashed, the device must be seen within
the connector's activation window or its registration ends."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import Event
from devices import services, tasks
from devices.models import Credential, Device
from tests.support.clients import DeviceClient, basic

pytestmark = pytest.mark.django_db


def secret_url(connector, identity: str) -> str:
    return f"/api/v1/connectors/{connector.pk}/devices/{identity}/secret"


@pytest.fixture
def password_connector(make_connector):
    return make_connector(
        identity_type="base10", identity_length=8, auth_mode="password",
        _resources={"myalias": "number"},
    )  # fmt: skip


def test_a_token_device_is_given_its_token_once_and_writes_with_it(
    connector, whitelist, api_client, device_client
):
    whitelist(connector, "00000001")
    before = timezone.now()
    response = api_client.post(secret_url(connector, "00000001"), {})
    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    issued = response.json()
    assert set(issued) == {"identity", "auth_mode", "secret", "connect_by"}
    assert (issued["identity"], issued["auth_mode"]) == ("00000001", "token")
    token = issued["secret"]
    device = Device.objects.get(identity="00000001")
    assert device.status == Device.PROVISIONED and device.last_seen_at is None
    assert before + timedelta(seconds=connector.activation_window_seconds) <= device.connect_by
    # Only its hash is kept, and the event log never holds it.
    assert token not in str(list(Credential.objects.values()))
    assert not Event.objects.filter(reason__contains=token).exists()
    # The device uses it as if it had activated itself; it cannot activate again.
    assert device_client.write("myalias=5", f"Token {token}").status_code == 204
    assert device_client.activate("00000001").status_code == 409
    device.refresh_from_db()
    assert device.last_seen_at is not None
    # Seen in time: the sweep leaves it alone, even past its deadline.
    Device.objects.filter(pk=device.pk).update(connect_by=timezone.now() - timedelta(seconds=1))
    assert services.end_unconnected() == 0
    assert Device.objects.get(pk=device.pk).status == Device.PROVISIONED


def test_a_password_device_gets_the_secret_given_or_one_made(
    password_connector, whitelist, api_client
):
    whitelist(password_connector, "00000001")
    whitelist(password_connector, "00000002")
    given = api_client.post(
        secret_url(password_connector, "00000001"), {"secret": "a-secret-of-twenty-bytes"}
    )
    assert given.status_code == 201 and given.json()["secret"] == "a-secret-of-twenty-bytes"
    made = api_client.post(secret_url(password_connector, "00000002"), {}).json()["secret"]
    assert len(made) == 32 and made != "a-secret-of-twenty-bytes"
    client = DeviceClient(password_connector)
    assert (
        client.write("myalias=1", basic("00000001", "a-secret-of-twenty-bytes")).status_code == 204
    )
    assert client.write("myalias=2", basic("00000002", made)).status_code == 204
    assert (
        client.write("myalias=3", basic("00000002", "a-secret-of-twenty-bytes")).status_code == 401
    )


def test_a_device_not_seen_in_its_window_loses_its_registration(
    connector, whitelist, api_client, device_client
):
    whitelist(connector, "00000001")
    token = api_client.post(secret_url(connector, "00000001"), {}).json()["secret"]
    assert services.end_unconnected() == 0  # not due yet
    Device.objects.update(connect_by=timezone.now() - timedelta(seconds=1))
    assert tasks.expire_whitelist.apply().get() == 1
    device = Device.objects.get(identity="00000001")
    assert device.status == Device.EXPIRED
    assert not device.credentials.filter(state=Credential.ACTIVE).exists()
    assert device_client.write("myalias=5", f"Token {token}").status_code == 401
    assert Event.objects.filter(
        kind=Event.EXPIRE, reason="not seen within its window after its secret was issued"
    ).exists()
    # An admin can start it over.
    services.reset_device(device)
    device.refresh_from_db()
    assert device.status == Device.WHITELISTED and device.connect_by is None


@pytest.mark.parametrize(
    "body, status",
    [
        ({"secret": "short"}, 400),
        ({"secret": "long enough for a secret\x00but NUL"}, 400),
        ({"secret": 12345678}, 400),
        ({"secret": "x" * 1025}, 400),
    ],
)
def test_bad_secrets_are_400_and_change_nothing(
    password_connector, whitelist, api_client, body, status
):
    whitelist(password_connector, "00000001")
    assert api_client.post(secret_url(password_connector, "00000001"), body).status_code == status
    assert Device.objects.get().status == Device.WHITELISTED
    assert not Credential.objects.exists()


def test_what_cannot_be_given_a_secret_is_refused(
    connector, cert_connector, whitelist, api_client, other_api_client
):
    whitelist(connector, "00000001")
    url = secret_url(connector, "00000001")
    # Token mode makes its own token.
    assert api_client.post(url, {"secret": "my-own-secret-of-20-bytes"}).status_code == 400
    # Someone else's connector does not exist for them.
    assert other_api_client.post(url, {}).status_code == 404
    assert api_client.post(secret_url(connector, "00000009"), {}).status_code == 404
    assert api_client.post(url, {}).status_code == 201
    # Once provisioned, never again (the secret is not shown twice).
    assert api_client.post(url, {}).status_code == 409
    # A window that has passed.
    whitelist(connector, "00000002")
    Device.objects.filter(identity="00000002").update(
        activation_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api_client.post(secret_url(connector, "00000002"), {}).status_code == 409
    # Certificate connectors have no secrets.
    whitelist(cert_connector, cert_identity(cert_connector))
    response = api_client.post(secret_url(cert_connector, cert_identity(cert_connector)), {})
    assert response.status_code == 409
    assert Device.objects.filter(status=Device.PROVISIONED).count() == 1


def cert_identity(connector) -> str:
    return "0" * connector.identity_length if connector.identity_length else "device-1"


def test_the_portal_gives_a_secret_once_after_a_confirmation(
    connector, whitelist, owner_client, device_client
):
    device = whitelist(connector, "00000001")
    page = reverse("devices:detail", args=[connector.pk, device.pk])
    action = reverse("devices:action", args=[connector.pk, device.pk, "secret"])
    assert action in owner_client.get(page).content.decode()
    assert "shows its token once" in owner_client.get(action).content.decode()
    response = owner_client.post(action)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    token = re.search(
        r'<pre class="code secret"><code>([A-Za-z0-9_-]+)</code>', response.content.decode()
    )[1]
    assert device_client.write("myalias=1", f"Token {token}").status_code == 204
    # Provisioned: no button, and asking again shows no secret.
    assert action not in owner_client.get(page).content.decode()
    again = owner_client.post(action, follow=True).content.decode()
    assert "only a whitelisted device can be given a secret" in again and token not in again


def test_a_maker_without_the_connector_cannot_give_a_secret(connector, whitelist, other_browser):
    device = whitelist(connector, "00000001")
    action = reverse("devices:action", args=[connector.pk, device.pk, "secret"])
    assert other_browser.post(action).status_code == 404
    assert Device.objects.get().status == Device.WHITELISTED
