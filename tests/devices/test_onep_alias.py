"""The One Platform names of the alias calls (/onep:v1/stack/alias) and Murano's
token header, X-Exosite-CIK, on both /api:v1 and /onep:v1."""

from urllib.parse import quote

import pytest

from audit.models import Event
from devices.models import DataPoint
from tests.support.clients import DeviceClient, through_proxy
from tests.support.tls import make_certificate

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded; charset=utf-8"
PATHS = ["/onep:v1/stack/alias", "/api:v1/stack/alias"]


@pytest.fixture
def token(device_client, connector, whitelist):
    whitelist(connector, "00000001")
    return device_client.activate("00000001").content.decode()


@pytest.mark.parametrize("path", PATHS)
def test_cik_header_writes_and_reads(device_client, token, path):
    written = device_client.post(path, "myalias=50", content_type=FORM, HTTP_X_EXOSITE_CIK=token)
    assert written.status_code == 204
    assert DataPoint.objects.get().value == "50"
    read = device_client.get(f"{path}?myalias", HTTP_X_EXOSITE_CIK=token)
    assert read.status_code == 200
    assert read.content == b"myalias=50"


def test_onep_path_takes_every_credential_the_api_path_takes(device_client, token):
    assert device_client.write("myalias=1", f"Token {token}").status_code == 204
    response = device_client.post(
        "/onep:v1/stack/alias", "myalias=2", content_type=FORM, HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert response.status_code == 204
    assert list(DataPoint.objects.order_by("id").values_list("value", flat=True)) == ["1", "2"]


@pytest.mark.parametrize("header", ["", "   ", "x" * 40, "\x00"])
def test_a_wrong_or_empty_cik_is_401_and_logged(device_client, token, header):
    response = device_client.post(
        "/onep:v1/stack/alias", "myalias=1", content_type=FORM, HTTP_X_EXOSITE_CIK=header
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" in response
    assert not DataPoint.objects.exists()
    assert Event.objects.filter(kind="auth_failed").count() == 1


def test_an_authorization_header_wins_over_the_cik(device_client, token):
    response = device_client.post(
        "/onep:v1/stack/alias",
        "myalias=1",
        content_type=FORM,
        HTTP_AUTHORIZATION="Token " + "y" * 40,
        HTTP_X_EXOSITE_CIK=token,
    )
    assert response.status_code == 401
    assert not DataPoint.objects.exists()


def test_cik_of_another_connector_is_401(make_connector, whitelist, token):
    other = make_connector(_resources={"myalias": "number"})
    response = DeviceClient(other).post(
        "/onep:v1/stack/alias", "myalias=1", content_type=FORM, HTTP_X_EXOSITE_CIK=token
    )
    assert response.status_code == 401


def test_long_poll_on_onep_answers_304_then_200(device_client, token, settings):
    settings.LONG_POLL_INTERVAL_SECONDS = 0.01
    waited = device_client.get(
        "/onep:v1/stack/alias?myalias", HTTP_X_EXOSITE_CIK=token, HTTP_REQUEST_TIMEOUT="50"
    )
    assert waited.status_code == 304
    assert "Content-Type" not in waited
    device_client.post(
        "/onep:v1/stack/alias", "myalias=7", content_type=FORM, HTTP_X_EXOSITE_CIK=token
    )
    changed = device_client.get(
        "/onep:v1/stack/alias?myalias",
        HTTP_X_EXOSITE_CIK=token,
        HTTP_REQUEST_TIMEOUT="50",
        HTTP_IF_MODIFIED_SINCE="1",
    )
    assert changed.status_code == 200
    assert changed.content == b"myalias=7"
    assert "Last-Modified" in changed


def test_hybrid_write_read_writes_then_reads(device_client, token):
    response = device_client.post(
        "/onep:v1/stack/alias?myalias&other",
        "myalias=9",
        content_type=FORM,
        HTTP_X_EXOSITE_CIK=token,
    )
    assert response.status_code == 200
    assert response.content == b"myalias=9"


def test_a_nul_in_the_query_or_body_is_400_and_stores_nothing(device_client, token):
    bad_body = device_client.post(
        "/onep:v1/stack/alias", "myalias=1%00", content_type=FORM, HTTP_X_EXOSITE_CIK=token
    )
    assert bad_body.status_code == 400
    bad_query = device_client.get("/onep:v1/stack/alias?my%00alias", HTTP_X_EXOSITE_CIK=token)
    assert bad_query.status_code == 400
    assert not DataPoint.objects.exists()


def test_certificate_mode_writes_on_onep(make_connector, whitelist):
    connector = make_connector(
        auth_mode="certificate",
        identity_type="base10",
        identity_length=8,
        _resources={"myalias": "number"},
    )
    whitelist(connector, "00000002")
    cert = make_certificate("00000002").cert_pem
    response = DeviceClient(connector).post(
        "/onep:v1/stack/alias",
        "myalias=55",
        content_type="application/x-www-form-urlencoded",
        **through_proxy(HTTP_X_SSL_CLIENT_CERT=quote(cert)),
    )
    assert response.status_code == 204
    assert DataPoint.objects.get().value == "55"


def test_a_forged_certificate_header_without_the_proxy_secret_is_no_credential(
    make_connector, whitelist
):
    connector = make_connector(auth_mode="certificate", _resources={"myalias": "number"})
    whitelist(connector, "dev-2")
    cert = make_certificate("dev-2").cert_pem
    response = DeviceClient(connector).post(
        "/onep:v1/stack/alias",
        "myalias=55",
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SSL_CLIENT_CERT=quote(cert),
    )
    assert response.status_code == 401
