"""Shared by the audit-trail tests (a plugin of tests/conftest.py): a connector with a
log, one with a PKI, the owner's browser, and what a deleted connector's log must
look like."""

import pytest
from django.test import Client

from audit.models import Event
from connectors.models import Connector
from tests.support.tls import make_ca, make_certificate


@pytest.fixture
def owner_browser(owner):
    """The portal signed in as the connector owner."""
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def busy(connector, device_client, whitelist):
    """A connector with a log: three devices whitelisted, activated and writing."""
    for number in range(1, 4):
        identity = f"0000000{number}"
        whitelist(connector, identity)
        token = device_client.activate(identity).content.decode()
        for value in range(5):
            assert device_client.write(f"myalias={value}", f"Token {token}").status_code == 204
    device_client.activate("99999999")  # refused: not whitelisted, logged all the same
    return connector


def log_of(connector_id: str):
    return Event.objects.filter(connector_id=connector_id).order_by("id")


def assert_deleted_by(connector_id: str, before: list, username: str, via: str):
    """The log is what it was, plus one `delete` line naming the person and the door."""
    assert not Connector.objects.filter(pk=connector_id).exists()
    after = list(log_of(connector_id).values_list("pk", flat=True))
    assert after[:-1] == before
    deleted = log_of(connector_id).last()
    assert deleted.kind == Event.DELETE
    assert deleted.identity == ""
    assert deleted.actor.get_username() == username
    assert deleted.actor_name == username
    assert f"by {username} via {via}" in deleted.reason
    return deleted


@pytest.fixture
def pki(api_client, make_connector):
    """A certificate connector with a CA, a certificate it issued and revoked, another
    still active, and a verified trust anchor."""
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    base = f"/api/v1/connectors/{connector.pk}/"
    api_client.post(f"{base}ca/", {})
    first = api_client.post(f"{base}ca/issue", {"name": "00000001"}).json()
    api_client.post(f"{base}certificates/{first['fingerprint']}/revoke")
    api_client.post(f"{base}ca/issue", {"name": "00000002"})
    vendor = make_ca("Vendor device CA")
    anchor = api_client.post(f"{base}trust-anchors/", {"certificate": vendor.cert_pem}).json()
    proof = make_certificate(anchor["verification_code"], issuer=vendor)
    api_client.post(f"{base}trust-anchors/{anchor['id']}/verify", {"certificate": proof.cert_pem})
    return connector
