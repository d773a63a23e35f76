"""Foundry `generate` issues a certificate: a browser session can ask only by POST with
its CSRF token, never by GET (a cross-site link or image carries the session cookie)."""

import json
from urllib.parse import quote

import pytest
from django.test import Client

from certificates.models import CertificateAuthority, IssuedCertificate

pytestmark = pytest.mark.django_db

TOPICS = quote(json.dumps(["1/+/1"]))


@pytest.fixture
def connector_with_api_ca(make_connector, api_client):
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    assert api_client.post(f"/api/v1/connectors/{connector.pk}/ca/", {}).status_code == 201
    assert CertificateAuthority.objects.filter(connector=connector).exists()
    return connector


def generate_paths(connector) -> list[tuple[str, dict]]:
    """Every place generate is served: management API, /c/ path form, device host."""
    return [
        (f"/api/v1/connectors/{connector.pk}/certificates/generate", {}),
        (f"/c/{connector.pk}/foundry/certificates/generate", {}),
        ("/foundry/certificates/generate", {"HTTP_HOST": connector.device_host}),
    ]


def signed_in(enforce_csrf_checks=False) -> Client:
    """A browser that signed in through the login page, as the connector owner."""
    browser = Client(enforce_csrf_checks=enforce_csrf_checks)
    browser.get("/login/")
    response = browser.post(
        "/login/",
        {
            "username": "owner",
            "password": "owner-pass-123",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"].value,
        },
    )
    assert response.status_code == 302, response.content
    return browser


def test_a_cross_site_get_with_a_browser_session_issues_nothing(connector_with_api_ca):
    browser = signed_in()
    for path, extra in generate_paths(connector_with_api_ca):
        response = browser.get(f"{path}?topics={TOPICS}", HTTP_SEC_FETCH_SITE="cross-site", **extra)
        assert response.status_code == 405, (path, response.content)
        error = response.json()["error"]
        assert error["code"] == 405
        assert "API token" in error["message"]
    assert not IssuedCertificate.objects.exists()


def test_get_with_an_api_token_still_generates_everywhere(api_client, connector_with_api_ca):
    for path, extra in generate_paths(connector_with_api_ca):
        response = api_client.get(f"{path}?topics={TOPICS}", **extra)
        assert response.status_code == 200, (path, response.content)
        assert set(response.json()) == {"id", "arn", "cert", "private"}
    issued = IssuedCertificate.objects.all()
    assert [certificate.state for certificate in issued] == ["active"] * 3


def test_a_session_post_without_the_csrf_token_is_refused(connector_with_api_ca):
    browser = signed_in(enforce_csrf_checks=True)
    for path, extra in generate_paths(connector_with_api_ca)[:2]:
        response = browser.post(path, {"topics": json.dumps(["1/+/1"])}, **extra)
        assert response.status_code == 403, (path, response.content)
        assert "CSRF" in response.json()["error"]["message"]
    assert not IssuedCertificate.objects.exists()


def test_a_session_post_with_the_csrf_token_generates(connector_with_api_ca):
    browser = signed_in(enforce_csrf_checks=True)
    response = browser.post(
        f"/api/v1/connectors/{connector_with_api_ca.pk}/certificates/generate",
        {"topics": ["1/+/1"]},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert response.status_code == 200, response.content
    issued = IssuedCertificate.objects.get()
    assert (issued.fingerprint, issued.state, issued.topics) == (
        response.json()["id"],
        "active",
        ["1/+/1"],
    )


def test_post_with_an_api_token_generates_an_inactive_certificate_without_topics(
    api_client, connector_with_api_ca
):
    response = api_client.post(
        f"/api/v1/connectors/{connector_with_api_ca.pk}/certificates/generate"
    )
    assert response.status_code == 200, response.content
    assert IssuedCertificate.objects.get().state == "inactive"


@pytest.mark.parametrize("key_type", [["rsa-2048"], {"a": 1}, 5, "dsa"])
def test_a_key_type_that_is_not_a_known_name_is_a_400(api_client, connector_with_api_ca, key_type):
    response = api_client.post(
        f"/api/v1/connectors/{connector_with_api_ca.pk}/certificates/generate",
        {"key_type": key_type},
    )
    assert response.status_code == 400, response.content
    assert "key_type" in response.json()["error"]["message"]
    assert not IssuedCertificate.objects.exists()
