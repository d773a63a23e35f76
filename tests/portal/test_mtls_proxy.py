"""The local nginx front end: real TLS handshakes, and headers only nginx may set."""

import pytest

from tests.support.tls import curl, make_certificate

pytestmark = pytest.mark.django_db(transaction=True)


def test_nginx_serves_the_app_over_https_with_a_verified_server_certificate(nginx_proxy):
    response = nginx_proxy.request("GET", "/timestamp")
    assert response.status == 200
    assert response.text.strip().isdigit()


def test_curl_reaches_a_device_host_through_nginx(nginx_proxy, make_connector):
    connector = make_connector()
    result = curl(
        "--cacert",
        str(nginx_proxy.ca_file),
        *nginx_proxy.curl_resolve(connector),
        nginx_proxy.device_url(connector, "/timestamp"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().isdigit()


def test_a_client_certificate_from_an_unknown_issuer_still_completes_the_handshake(
    nginx_proxy, tmp_path
):
    cert_file, key_file = make_certificate("00000002").write(tmp_path, "device")
    response = nginx_proxy.request("GET", "/timestamp", cert_file=cert_file, key_file=key_file)
    assert response.status == 200
