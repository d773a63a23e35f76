"""Certificate devices on a real Mosquitto: TLS client certificates chaining to the
connector's CA, the CN as broker username, the bound topics, revocation."""

import ssl
import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest
from AWSIoTPythonSDK.MQTTLib import AWSIoTMQTTClient

from certificates import services as certificates
from connectors.models import Connector
from mqtt import broker, sync, tls, topics

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connector_with_ca(make_connector):
    connector = make_connector(auth_mode=Connector.CERTIFICATE)
    certificates.create_authority(connector)
    return connector


@pytest.fixture
def cert_broker(connector_with_ca, tmp_path, settings):
    """A broker whose certificate listener trusts the connectors' CAs as Gatehouse wrote them."""
    folder = tmp_path / "tls"
    files, server_ca = tls.server_files(folder)
    files.cafile = folder / "device-cas.pem"
    files.crlfile = folder / "device-crls.pem"
    assert tls.write_trust(files.cafile, files.crlfile)
    running = broker.Broker(tmp_path / "broker", tls=files).start()
    running.server_ca = server_ca
    for name, value in running.settings().items():
        setattr(settings, name, value)
    settings.MQTT_SYNC_INTERVAL = 0.0
    settings.MQTT_TRUST_DIR = str(folder)
    settings.MQTT_BROKER_PID_FILE = str(running.pid_file)
    try:
        yield running
    finally:
        running.stop()


def issue(connector, identity, folder, topic_filters):
    """A certificate from the connector's CA, bound to the device with `topic_filters`."""
    from devices import services

    services.whitelist_device(connector, identity)
    issued = certificates.issue_certificate(
        connector.certificate_authority, common_name=identity, state="inactive"
    )
    certificates.provision_certificate(
        connector,
        fingerprint=issued.certificate.fingerprint,
        identity=identity,
        topics=topic_filters,
    )
    cert = folder / f"{identity}.pem"
    key = folder / f"{identity}.key"
    cert.write_text(issued.certificate.certificate_pem)
    key.write_text(issued.private_key_pem)
    return issued.certificate, cert, key


class CertDevice:
    def __init__(self, running, cert, key):
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id=f"cert-{uuid.uuid4()}"
        )
        self.client.tls_set(
            ca_certs=str(running.server_ca),
            certfile=str(cert),
            keyfile=str(key),
            cert_reqs=ssl.CERT_REQUIRED,
        )
        self.connack = threading.Event()
        self.gone = threading.Event()
        self.granted = {}
        self.suback = threading.Condition()
        self.client.on_connect = lambda c, u, f, rc, p: (
            setattr(self, "rc", rc),
            self.connack.set(),
        )
        self.client.on_disconnect = lambda *args: self.gone.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(running.host, running.cert_port)
        self.client.loop_start()

    def _on_subscribe(self, client, userdata, mid, codes, properties):
        with self.suback:
            self.granted[mid] = not codes[0].is_failure
            self.suback.notify_all()

    def subscribe(self, topic_filter):
        _, mid = self.client.subscribe(topic_filter, qos=1)
        with self.suback:
            assert self.suback.wait_for(lambda: mid in self.granted, 30)
        return self.granted[mid]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_a_certificate_device_connects_and_uses_its_namespace_and_bound_topics(
    connector_with_ca, cert_broker, tmp_path
):
    _, cert, key = issue(connector_with_ca, "sensor-1", tmp_path, ["sensors/#"])
    with sync.connect() as client:
        sync.flush(client)
    device = CertDevice(cert_broker, cert, key)
    try:
        assert device.connack.wait(30) and not device.rc.is_failure
        assert device.subscribe(topics.namespace(connector_with_ca.pk, "sensor-1") + "/#")
        assert device.subscribe(f"{connector_with_ca.pk}/sensors/#")
        assert not device.subscribe("sensors/#")  # another connector's, were it granted
        assert not device.subscribe(f"{connector_with_ca.pk}/other-device/#")
    finally:
        device.close()


# The SDK (its own copy of an old paho) asks for TLS the way Python 3.10 deprecated, and
# leaves its socket to the garbage collector.
@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_aws_iot_sdk_connects_with_a_certificate_from_the_connectors_ca(
    connector_with_ca, cert_broker, tmp_path
):
    _, cert, key = issue(connector_with_ca, "sensor-2", tmp_path, [])
    with sync.connect() as client:
        sync.flush(client)
    sdk = AWSIoTMQTTClient(f"sdk-{uuid.uuid4()}")
    sdk.configureEndpoint(cert_broker.host, cert_broker.cert_port)
    sdk.configureCredentials(str(cert_broker.server_ca), str(key), str(cert))
    sdk.configureConnectDisconnectTimeout(30)
    sdk.configureMQTTOperationTimeout(30)
    assert sdk.connect()
    try:
        namespace = topics.namespace(connector_with_ca.pk, "sensor-2")
        received = threading.Event()
        assert sdk.subscribe(f"{namespace}/#", 1, lambda client, userdata, message: received.set())
        assert sdk.publish(f"{namespace}/echo", "hello", 1)
        assert received.wait(30)
    finally:
        sdk.disconnect()


def test_revoking_the_certificate_disconnects_the_device_and_refuses_it_at_tls(
    connector_with_ca, cert_broker, tmp_path
):
    issued, cert, key = issue(connector_with_ca, "sensor-3", tmp_path, [])
    with sync.connect() as client:
        sync.flush(client)
    device = CertDevice(cert_broker, cert, key)
    try:
        assert device.connack.wait(30) and not device.rc.is_failure
        reloads = cert_broker.reloads()
        certificates.revoke_device_certificate(
            connector_with_ca, fingerprint=issued.fingerprint, identity="sensor-3"
        )
        with sync.connect() as client:
            sync.flush(client)
        assert device.gone.wait(30), "the broker kept the session"
    finally:
        device.close()
    deadline = time.monotonic() + 30
    while cert_broker.reloads() == reloads:
        assert time.monotonic() < deadline, "the broker did not reread its CRL"
        time.sleep(0.05)
    again = CertDevice(cert_broker, cert, key)
    try:
        assert again.gone.wait(30) and not again.connack.is_set()
    finally:
        again.close()


def test_two_certificates_with_one_cn_are_not_both_admitted(
    make_connector, connector_with_ca, cert_broker, tmp_path
):
    other = make_connector(auth_mode=Connector.CERTIFICATE)
    certificates.create_authority(other)
    issue(connector_with_ca, "same-cn", tmp_path, [])
    (tmp_path / "other").mkdir()
    issue(other, "same-cn", tmp_path / "other", [])
    with sync.connect() as client:
        sync.flush(client)
    from audit.models import Event

    refusal = Event.objects.get(connector=other, identity="same-cn", kind=Event.AUTH_FAILED)
    assert "already used on the broker" in refusal.reason


def foundry_certificate(api_client, connector, whitelist, identity, folder, topic_filters):
    """A certificate Foundry generates over the API and binds to `identity`: (cert, key)."""
    import base64
    import json
    from urllib.parse import quote

    whitelist(connector, identity)
    query = quote(json.dumps(topic_filters))
    response = api_client.get(f"/c/{connector.pk}/foundry/certificates/generate?topics={query}")
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    bound = api_client.post(
        f"/c/{connector.pk}/foundry/certificates/provision",
        {"arn": body["arn"], "certId": body["id"], "deviceId": identity},
        format="json",
    )
    assert bound.status_code == 200, bound.content
    cert, key = folder / f"{identity}-foundry.pem", folder / f"{identity}-foundry.key"
    cert.write_bytes(base64.b64decode(body["cert"]))
    key.write_bytes(base64.b64decode(body["private"]))
    return cert, key


@pytest.mark.filterwarnings("ignore:ssl.PROTOCOL_TLS is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_foundry_certificates_connect_with_paho_and_the_aws_sdk_on_their_bound_topics(
    connector_with_ca, cert_broker, tmp_path, api_client, whitelist
):
    paho_cert = foundry_certificate(
        api_client, connector_with_ca, whitelist, "foundry-1", tmp_path, ["sensors/#"]
    )
    sdk_cert = foundry_certificate(
        api_client, connector_with_ca, whitelist, "foundry-2", tmp_path, ["sensors/#"]
    )
    with sync.connect() as client:
        sync.flush(client)
    device = CertDevice(cert_broker, *paho_cert)
    sdk = AWSIoTMQTTClient(f"sdk-{uuid.uuid4()}")
    sdk.configureEndpoint(cert_broker.host, cert_broker.cert_port)
    sdk.configureCredentials(str(cert_broker.server_ca), str(sdk_cert[1]), str(sdk_cert[0]))
    sdk.configureConnectDisconnectTimeout(30)
    sdk.configureMQTTOperationTimeout(30)
    try:
        assert device.connack.wait(30) and not device.rc.is_failure
        assert device.subscribe(f"{connector_with_ca.pk}/sensors/#")
        assert not device.subscribe(topics.namespace(connector_with_ca.pk, "foundry-2") + "/#")
        received = []
        device.client.on_message = lambda client, userdata, message: received.append(
            (message.topic, message.payload)
        )
        assert sdk.connect()
        # The SDK's device publishes on the topic bound to its certificate; the paho
        # device, bound to the same filter, receives it.
        assert sdk.publish(f"{connector_with_ca.pk}/sensors/room-1", "21.5", 1)
        deadline = time.monotonic() + 30
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [(f"{connector_with_ca.pk}/sensors/room-1", b"21.5")]
    finally:
        sdk.disconnect()
        device.close()
