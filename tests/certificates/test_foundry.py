"""The Foundry self-provisioning dialect answers in Foundry's formats (docs/foundry.md):
the ARN, the key encodings, a unique name per certificate bound at provision, a CA made
on first use, and topics that are MQTT topic filters."""

import base64
import json
import re
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from audit.models import Event
from certificates import services
from certificates.models import CertificateAuthority, IssuedCertificate
from core import redis_scripts
from devices.models import Device
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def connector_without_ca(make_connector):
    """A certificate-mode connector with no CA yet: Foundry needs no setup step."""
    return make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)


def generate_url(connector, topics=None) -> str:
    query = f"?topics={quote(json.dumps(topics))}" if topics is not None else ""
    return f"/c/{connector.pk}/foundry/certificates/generate{query}"


def generate(api_client, connector, topics=None, **query):
    response = api_client.get(generate_url(connector, topics), query or None)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def certificate_of(body) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(body["cert"]))


def common_name(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


# --- the ARN ---------------------------------------------------------------------------------


def test_the_arn_has_foundrys_six_fields_with_the_configured_region_and_account(
    api_client, connector_without_ca, settings
):
    settings.FOUNDRY_REGION, settings.FOUNDRY_ACCOUNT = "us-west-2", "441898714953"

    body = generate(api_client, connector_without_ca)

    assert body["arn"] == f"arn:aws:iot:us-west-2:441898714953:cert/{body['id']}"
    assert len(body["arn"].split(":")) == 6
    assert HEX64.fullmatch(body["id"])


def test_the_default_arn_names_a_placeholder_region_and_account(api_client, connector_without_ca):
    body = generate(api_client, connector_without_ca)
    assert body["arn"] == f"arn:aws:iot:us-east-1:000000000000:cert/{body['id']}"


def test_provision_refuses_an_arn_of_another_region_and_names_the_right_one(
    api_client, connector_without_ca, whitelist
):
    whitelist(connector_without_ca, "00000001")
    body = generate(api_client, connector_without_ca)
    wrong = body["arn"].replace("us-east-1", "eu-west-1")

    response = api_client.post(
        f"/c/{connector_without_ca.pk}/foundry/certificates/provision",
        {"arn": wrong, "certId": body["id"], "deviceId": "00000001"},
    )

    assert response.status_code == 400
    assert body["arn"] in response.json()["error"]["message"]
    assert Device.objects.get().status == Device.WHITELISTED


# --- private keys ----------------------------------------------------------------------------


def test_the_private_key_is_rsa_2048_in_pkcs1_as_foundry_sends_it(api_client, connector_without_ca):
    body = generate(api_client, connector_without_ca)

    pem = base64.b64decode(body["private"])
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert pem.endswith(b"-----END RSA PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key() == certificate_of(body).public_key()


def test_an_ec_key_asked_for_comes_in_sec1(api_client, connector_without_ca):
    body = generate(api_client, connector_without_ca, key_type="ec-p256")

    pem = base64.b64decode(body["private"])
    assert pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == certificate_of(body).public_key()


def test_the_management_api_still_hands_out_pkcs8(api_client, connector_without_ca):
    services.create_authority(connector_without_ca)
    response = api_client.post(
        f"/api/v1/connectors/{connector_without_ca.pk}/ca/issue", {"name": "00000001"}
    )
    assert response.status_code == 201
    assert response.json()["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----\n")


# --- one name per certificate, bound to its device ---------------------------------------------


def test_every_generated_certificate_has_its_own_name_that_names_no_device(
    api_client, connector_without_ca
):
    names = {
        common_name(certificate_of(generate(api_client, connector_without_ca))) for _ in range(3)
    }

    assert len(names) == 3
    for name in names:
        assert name.startswith("Gatehouse device certificate ")
        assert services.is_generated_name(name)
    stored = set(IssuedCertificate.objects.values_list("common_name", flat=True))
    assert stored == names


def test_provision_binds_the_certificate_to_the_device_a_broker_can_look_up(
    api_client, connector_without_ca, whitelist
):
    whitelist(connector_without_ca, "00000001")
    whitelist(connector_without_ca, "00000002")
    first, second = (
        generate(api_client, connector_without_ca),
        generate(api_client, connector_without_ca),
    )
    for body, device_id in ((first, "00000001"), (second, "00000002")):
        response = api_client.post(
            f"/c/{connector_without_ca.pk}/foundry/certificates/provision",
            {"arn": body["arn"], "certId": body["id"], "deviceId": device_id},
            format="json",
        )
        assert response.status_code == 200, response.content

    by_name = {
        issued.common_name: issued.device.identity
        for issued in IssuedCertificate.objects.select_related("device")
    }
    assert by_name == {
        common_name(certificate_of(first)): "00000001",
        common_name(certificate_of(second)): "00000002",
    }
    provisioned = Device.objects.filter(status=Device.PROVISIONED)
    assert sorted(provisioned.values_list("identity", flat=True)) == ["00000001", "00000002"]


def test_a_certificate_bound_to_one_device_is_not_bound_to_another(
    api_client, connector_without_ca, whitelist
):
    whitelist(connector_without_ca, "00000001")
    whitelist(connector_without_ca, "00000002")
    body = generate(api_client, connector_without_ca)
    url = f"/c/{connector_without_ca.pk}/foundry/certificates/provision"
    assert api_client.post(url, {"certId": body["id"], "deviceId": "00000001"}).status_code == 200

    again = api_client.post(url, {"certId": body["id"], "deviceId": "00000002"})

    assert again.status_code == 409
    assert "another device" in again.json()["error"]["message"]
    assert Device.objects.get(identity="00000002").status == Device.WHITELISTED


# --- the CA, made on first use -------------------------------------------------------------------


def test_generate_on_a_connector_without_a_ca_creates_it_once(api_client, connector_without_ca):
    first = certificate_of(generate(api_client, connector_without_ca))
    second = certificate_of(generate(api_client, connector_without_ca))

    authority = CertificateAuthority.objects.get(connector=connector_without_ca)
    ca = x509.load_pem_x509_certificate(authority.certificate_pem.encode())
    assert first.issuer == second.issuer == ca.subject
    first.verify_directly_issued_by(ca)
    second.verify_directly_issued_by(ca)
    created = Event.objects.filter(reason__startswith="certificate authority created")
    assert created.count() == 1


def test_a_connector_someone_cannot_see_gets_no_ca(other_api_client, connector_without_ca):
    response = other_api_client.get(generate_url(connector_without_ca))

    assert response.status_code == 404
    assert not CertificateAuthority.objects.exists()


# --- topics ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topics", "says"),
    [
        (["1/#/1"], '"#" must be the last level'),
        (["a#"], '"#" must be the last level'),
        (["a/b+"], '"+" must be a whole level'),
        ([""], "at least one character"),
        (["a\x00b"], "NUL"),
        (["a\x07b"], "control characters"),
        (["x" * 65536], "at most 65535 bytes"),
        (["é" * 32768], "at most 65535 bytes"),
        (["$SYS/#"], "reserved for the broker"),
        ([5], "is a string"),
        ({"a": 1}, "JSON list"),
        (["a"] * 101, "at most 100"),
    ],
)
def test_generate_refuses_topics_that_are_not_mqtt_topic_filters(
    api_client, connector_without_ca, topics, says
):
    response = api_client.post(
        f"/c/{connector_without_ca.pk}/foundry/certificates/generate",
        {"topics": topics},
        format="json",
    )

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == 400
    assert "topics" in error["message"] and says in error["message"]
    assert not IssuedCertificate.objects.exists()


def test_the_seeds_example_topic_is_refused_in_the_query_too(api_client, connector_without_ca):
    response = api_client.get(generate_url(connector_without_ca, ["1/#/1", "test/+/+/1", "1/2/3"]))

    assert response.status_code == 400
    assert '"1/#/1": "#" must be the last level' in response.json()["error"]["message"]


def test_valid_filters_are_kept_in_order_once(api_client, connector_without_ca):
    topics = ["1/#", "test/+/+/1", "1/2/3", "#", "+", "+/+", "/", "a//b", "1/#", "ü/€"]

    body = generate(api_client, connector_without_ca, topics)

    issued = IssuedCertificate.objects.get(fingerprint=body["id"])
    assert issued.topics == ["1/#", "test/+/+/1", "1/2/3", "#", "+", "+/+", "/", "a//b", "ü/€"]
    assert issued.state == IssuedCertificate.ACTIVE


def test_provision_refuses_bad_topics_and_leaves_the_device_as_it_was(
    api_client, connector_without_ca, whitelist
):
    whitelist(connector_without_ca, "00000001")
    body = generate(api_client, connector_without_ca)

    response = api_client.post(
        f"/c/{connector_without_ca.pk}/foundry/certificates/provision",
        {"certId": body["id"], "deviceId": "00000001", "topics": ["XiQ/#/x"]},
        format="json",
    )

    assert response.status_code == 400
    assert "topics" in response.json()["error"]["message"]
    assert Device.objects.get().status == Device.WHITELISTED
    assert IssuedCertificate.objects.get().state == IssuedCertificate.INACTIVE


# --- bursts and outages -------------------------------------------------------------------------


def test_generates_past_the_connectors_rate_are_429_and_issue_nothing(
    api_client, connector_without_ca, settings
):
    settings.RATE_LIMIT_CERTIFICATE_GENERATE = "2/60"
    generate(api_client, connector_without_ca)
    generate(api_client, connector_without_ca)

    response = api_client.get(generate_url(connector_without_ca))

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == 429
    assert IssuedCertificate.objects.count() == 2


def test_a_bad_request_does_not_spend_the_rate(api_client, connector_without_ca, settings):
    settings.RATE_LIMIT_CERTIFICATE_GENERATE = "1/60"
    assert api_client.get(generate_url(connector_without_ca, ["1/#/1"])).status_code == 400
    generate(api_client, connector_without_ca)


def test_generate_answers_503_in_its_own_shape_while_redis_refuses_connections(
    api_client, connector_without_ca, settings
):
    settings.CACHES = {
        "default": {
            "BACKEND": "portal.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    redis_scripts.close_connection()
    try:
        response = api_client.get(generate_url(connector_without_ca))
    finally:
        redis_scripts.close_connection()

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error": {"code": 503, "message": "service temporarily unavailable, retry later"}
    }
    assert not IssuedCertificate.objects.exists()
