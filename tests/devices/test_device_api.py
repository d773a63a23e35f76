from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import Event
from devices.models import Credential, DataPoint, Device
from tests.support.clients import DeviceClient, basic, through_proxy

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"  # 28 bytes


def test_token_activation_returns_a_40_character_token(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    response = device_client.activate("00000001")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    token = response.content.decode()
    assert len(token) == 40
    device = Device.objects.get(identity="00000001")
    assert device.status == Device.PROVISIONED
    credential = device.credentials.get()
    assert token not in credential.token_hash


def test_token_write_is_stored_and_logged(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    response = device_client.write("myalias=50", f"Token {token}")
    assert response.status_code == 204
    assert DataPoint.objects.get().value == "50"
    kinds = list(
        Event.objects.filter(identity="00000001").order_by("id").values_list("kind", flat=True)
    )
    assert kinds == ["whitelist", "provision", "write"]


def test_basic_with_empty_user_carries_the_token(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    assert device_client.write("myalias=51", basic("", token)).status_code == 204


def test_password_activation_then_basic_write(make_connector, whitelist):
    connector = make_connector(auth_mode="password", _resources={"myalias": "number"})
    client = DeviceClient(connector)
    whitelist(connector, "dev-1")
    response = client.activate("dev-1", PASSWORD)
    assert response.status_code == 204
    assert not Credential.objects.get().password_hash.startswith(PASSWORD)
    assert client.write("myalias=50", basic("dev-1", PASSWORD)).status_code == 204
    # Second write is answered from the verified-credential cache.
    assert client.write("myalias=52", basic("dev-1", PASSWORD)).status_code == 204
    assert client.write("myalias=53", basic("dev-1", PASSWORD + "x")).status_code == 401


def test_short_password_is_415(make_connector, whitelist):
    connector = make_connector(auth_mode="password")
    whitelist(connector, "dev-1")
    response = DeviceClient(connector).activate("dev-1", "x" * 19)
    assert response.status_code == 415
    assert Device.objects.get().status == Device.WHITELISTED


def test_certificate_connector_answers_415_to_activate(make_connector, whitelist):
    connector = make_connector(auth_mode="certificate")
    whitelist(connector, "dev-1")
    assert DeviceClient(connector).activate("dev-1").status_code == 415


def test_identity_outside_the_format_is_400_and_says_what_was_expected(device_client):
    response = device_client.activate("12ab")
    assert response.status_code == 400
    assert b"exactly 8 decimal digits" in response.content


def test_source_ip_outside_allowlist_is_403(make_connector, whitelist):
    connector = make_connector(ip_allowlist=["10.0.0.0/8", "2001:db8::/32"])
    whitelist(connector, "dev-1")
    client = DeviceClient(connector)
    assert client.activate("dev-1", REMOTE_ADDR="192.0.2.1").status_code == 403
    assert client.activate("dev-1", REMOTE_ADDR="2001:db8::5").status_code == 200


def test_unknown_identity_is_404_unless_self_registration(make_connector):
    closed = make_connector()
    assert DeviceClient(closed).activate("dev-9").status_code == 404
    open_ = make_connector(self_registration=True)
    assert DeviceClient(open_).activate("dev-9").status_code == 200
    assert Device.objects.get(connector=open_).status == Device.PROVISIONED


def test_second_activation_is_409_and_no_second_credential(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    assert device_client.activate("00000001").status_code == 200
    assert device_client.activate("00000001").status_code == 409
    assert Credential.objects.count() == 1


def test_activation_after_window_is_410_even_without_the_sweep(device_client, connector, whitelist):
    device = whitelist(connector, "00000001")
    Device.objects.filter(pk=device.pk).update(
        activation_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert device_client.activate("00000001").status_code == 410
    event = Event.objects.filter(kind="provision_failed").get()
    assert "window" in event.reason


def test_too_many_activations_are_429_with_retry_after(device_client, connector, settings):
    settings.RATE_LIMIT_ACTIVATE = "3/60"
    codes = [device_client.activate("00000009").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    assert int(device_client.activate("00000009")["Retry-After"]) >= 1


def test_write_without_or_with_bad_credentials_is_401(device_client, connector):
    assert (
        device_client.post(
            "/api:v1/stack/alias", "a=1", content_type="application/x-www-form-urlencoded"
        ).status_code
        == 401
    )
    for header in ["Token nope", "Basic !!!", "Bearer x", "Basic " + "QQ==", "Token"]:
        assert device_client.write("myalias=1", header).status_code == 401
    assert Event.objects.filter(kind="auth_failed").count() == 6


def test_undefined_alias_is_logged_not_stored(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    assert device_client.write("other=7", f"Token {token}").status_code == 204
    assert not DataPoint.objects.exists()
    assert "undefined: other" in Event.objects.get(kind="write").reason


def test_read_latest_values(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    auth = "Token " + device_client.activate("00000001").content.decode()
    assert device_client.read("myalias", auth).status_code == 204
    device_client.write("myalias=1", auth)
    device_client.write("myalias=2", auth)
    response = device_client.read("myalias&other", auth)
    assert response.status_code == 200
    assert response.content == b"myalias=2"


def test_long_poll_times_out_with_304_and_answers_when_modified(
    device_client, connector, whitelist, settings
):
    settings.LONG_POLL_INTERVAL_SECONDS = 0.02
    whitelist(connector, "00000001")
    auth = "Token " + device_client.activate("00000001").content.decode()
    response = device_client.read("myalias", auth, HTTP_REQUEST_TIMEOUT="100")
    assert response.status_code == 304
    device_client.write("myalias=5", auth)
    response = device_client.read(
        "myalias", auth, HTTP_REQUEST_TIMEOUT="100", HTTP_IF_MODIFIED_SINCE="1000"
    )
    assert response.status_code == 200
    assert response.content == b"myalias=5"


def test_timestamp_is_unix_seconds(device_client):
    response = device_client.get("/timestamp")
    assert response.status_code == 200
    assert abs(int(response.content) - timezone.now().timestamp()) < 5


def test_path_prefix_reaches_the_same_api(client, connector, whitelist):
    whitelist(connector, "00000001")
    response = client.post(
        f"/c/{connector.id}/provision/activate",
        "id=00000001",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200


def test_unknown_connector_and_unknown_host(client, connector):
    response = client.post(
        "/provision/activate",
        "id=1",
        HTTP_HOST="dtnope.devices.localhost",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 404
    assert client.get("/timestamp", HTTP_HOST="evil.example").status_code == 400


def test_oversized_and_malformed_bodies_are_4xx(device_client, connector, whitelist, settings):
    settings.DEVICE_MAX_BODY_BYTES = 100
    whitelist(connector, "00000001")
    auth = "Token " + device_client.activate("00000001").content.decode()
    assert device_client.write("myalias=" + "9" * 200, auth).status_code == 413
    assert device_client.write("myalias=notanumber", auth).status_code == 400
    assert (
        device_client.post(
            "/api:v1/stack/alias",
            b"\xff\xfe",
            content_type="application/json",
            HTTP_AUTHORIZATION=auth,
        ).status_code
        == 415
    )
    assert device_client.write(b"%ff=\xff", auth).status_code == 400
    assert not DataPoint.objects.exists()


def test_revoked_device_is_refused_and_reset_device_can_activate_again(
    device_client, connector, whitelist
):
    from devices import services

    device = whitelist(connector, "00000001")
    auth = "Token " + device_client.activate("00000001").content.decode()
    services.revoke_device(device)
    assert device_client.write("myalias=1", auth).status_code == 401
    services.reset_device(device)
    assert device_client.activate("00000001").status_code == 200
    assert device_client.write("myalias=1", auth).status_code == 401


def test_reset_drops_cached_password_verification(make_connector, whitelist):
    from devices import services

    connector = make_connector(auth_mode="password")
    client = DeviceClient(connector)
    device = whitelist(connector, "dev-1")
    client.activate("dev-1", PASSWORD)
    assert client.write("a=1", basic("dev-1", PASSWORD)).status_code == 204
    services.reset_device(device)
    client.activate("dev-1", "another-password-of-20-bytes")
    assert client.write("a=1", basic("dev-1", PASSWORD)).status_code == 401


def test_alias_defined_after_earlier_writes_is_stored_at_once(device_client, connector, whitelist):
    from connectors.models import Resource

    whitelist(connector, "00000001")
    auth = "Token " + device_client.activate("00000001").content.decode()
    assert device_client.write("later=1", auth).status_code == 204
    Resource.objects.create(connector=connector, alias="later", format="number")
    assert device_client.write("later=2", auth).status_code == 204
    assert list(DataPoint.objects.values_list("alias", "value")) == [("later", "2")]


def test_device_passwords_are_stored_with_the_slow_salted_hash(make_connector, whitelist, settings):
    # The first of settings.py's default hashers, which the test suite swaps for speed.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    connector = make_connector(auth_mode="password")
    whitelist(connector, "dev-1")
    assert DeviceClient(connector).activate("dev-1", PASSWORD).status_code == 204
    stored = Credential.objects.get().password_hash
    algorithm, iterations, salt, _ = stored.split("$")
    assert algorithm == "pbkdf2_sha256" and int(iterations) >= 600_000 and salt


def test_repeated_basic_writes_do_not_verify_the_password_hash_again(make_connector, whitelist):
    connector = make_connector(auth_mode="password")
    client = DeviceClient(connector)
    whitelist(connector, "dev-1")
    client.activate("dev-1", PASSWORD)
    assert client.write("a=1", basic("dev-1", PASSWORD)).status_code == 204
    # With the stored hash unusable, only the remembered verification can let this in.
    Credential.objects.update(password_hash="!unusable")
    assert client.write("a=2", basic("dev-1", PASSWORD)).status_code == 204
    assert client.write("a=3", basic("dev-1", "another-password-of-20b")).status_code == 401


def test_secure_registration_answers_on_the_device_host_too(device_client):
    response = device_client.post(
        "/v1.1/cert/devices/registrations", {}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "error" in response.json()


@pytest.mark.parametrize("connector_id", ["%00", "dt%00abc", "x" * 300, "DT" + "0" * 32])
def test_malformed_connector_ids_in_the_path_are_404(client, connector_id):
    for path in ("provision/activate", "api:v1/stack/alias"):
        response = client.post(
            f"/c/{connector_id}/{path}",
            "id=1",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION="Token " + "a" * 40,
        )
        assert response.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_REQUEST_TIMEOUT": "9" * 400},
        {"HTTP_REQUEST_TIMEOUT": "²"},
        {"HTTP_REQUEST_TIMEOUT": "0"},
        {"HTTP_REQUEST_TIMEOUT": "100", "HTTP_IF_MODIFIED_SINCE": "9" * 20},
        {"HTTP_REQUEST_TIMEOUT": "100", "HTTP_IF_MODIFIED_SINCE": "²"},
    ],
)
def test_absurd_long_poll_headers_are_400(device_client, connector, whitelist, headers):
    whitelist(connector, "00000001")
    auth = "Token " + device_client.activate("00000001").content.decode()
    assert device_client.read("myalias", auth, **headers).status_code == 400


def test_a_certificate_with_a_malformed_connector_id_is_404(client):
    from core.net import CLIENT_CERT_META
    from tests.support.tls import make_certificate, pem

    response = client.post(
        "/c/dt%00/api:v1/stack/alias",
        "myalias=1",
        content_type="application/x-www-form-urlencoded",
        **through_proxy(**{CLIENT_CERT_META: pem(make_certificate("00000001").cert)}),
    )
    assert response.status_code == 404


def test_revoking_a_revoked_device_is_refused_and_changes_nothing(connector, whitelist):
    from devices import services

    device = services.revoke_device(whitelist(connector, "00000001"))
    version = device.credential_version
    with pytest.raises(services.InvalidTransition):
        services.revoke_device(device)
    device.refresh_from_db()
    assert device.credential_version == version
    assert Event.objects.filter(kind="revoke").count() == 1


def test_basic_write_for_a_device_without_a_password_is_401(make_connector, whitelist):
    connector = make_connector(auth_mode="password")
    client = DeviceClient(connector)
    whitelist(connector, "dev-1")  # whitelisted, never activated: no stored hash
    assert client.write("a=1", basic("dev-1", PASSWORD)).status_code == 401
    assert client.write("a=1", basic("nobody", PASSWORD)).status_code == 401
    assert Event.objects.filter(kind=Event.AUTH_FAILED).count() == 2
