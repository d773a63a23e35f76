"""Murano's device library, murano-client, unchanged over HTTPS through nginx running
deploy/nginx/gatehouse.conf before gunicorn: with a token (its `MuranoClient`, whose
watch and tell threads speak HTTP only to an https host), and in its TLS
client-certificate mode, where every request carries the device's certificate and no
token. Only its host (and the CA that signed nginx's certificate) is Gatehouse's.
"""

import time

import pytest

from devices import services
from devices.models import Credential, DataPoint, Device
from tests.devices.test_murano_client_http import RESOURCES, at_microsecond
from tests.portal.test_proxy_trust import app_server  # noqa: F401  (the fixture)
from tests.support.fronts import nginx_front  # noqa: F401  (the fixture)
from tests.support.murano import murano_client
from tests.support.tls import make_certificate

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # The library imports pkg_resources.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def points(connector, alias):
    rows = DataPoint.objects.filter(device__connector=connector, alias=alias)
    return list(rows.order_by("created_at", "id").values_list("created_at", "value"))


def test_murano_clients_watch_and_tell_threads_over_https(nginx_front, make_connector):  # noqa: F811
    connector = make_connector(identity_type="base10", identity_length=8, _resources=RESOURCES)
    services.whitelist_device(connector, "00000001")
    MuranoClient = murano_client("client").MuranoClient
    client = MuranoClient(
        memory_queue=False,
        murano_host=nginx_front.url(connector),
        murano_id="00000001",
        murano_cacert=str(nginx_front.ca_file),
        watchlist=["temp", "door"],
        http_timeout=5,
    )
    client.client_activate()
    assert client.is_activated() and len(client.murano_token()) == 40
    assert Credential.objects.filter(device__connector=connector).count() == 1

    status, written = client.ack("temp", "21")
    assert status and written.code == 204
    client.start_client()
    try:
        # The watch thread long-polls its whole watch list (If-Modified-Since: 0).
        inbound = client.watch(timeout=60)
        assert inbound is not None
        assert (inbound.resource, inbound.payload) == ("temp", "21")
    finally:
        client.stop_all()

    measured = time.time() - 5
    status, recorded = client.tell(resource="door", timestamp=measured, payload="open")
    assert status and recorded.code == 204, recorded
    assert points(connector, "door") == [(at_microsecond(measured), "open")]
    assert [value for _, value in points(connector, "temp")] == ["21"]
    assert client.exosite_timestamp().status_code == 200
    # Its destructor calls MuranoHTTP.__del__, which does not exist; with no protocol
    # set it calls nothing.
    client.outbound_protocol = None


@pytest.fixture
def cert_library(nginx_front, make_connector, tmp_path):  # noqa: F811
    """A certificate connector's device, and the library holding its certificate."""
    connector = make_connector(
        auth_mode="certificate", identity_type="base10", identity_length=8, _resources=RESOURCES
    )
    services.whitelist_device(connector, "00000001")
    cert_file, key_file = make_certificate("00000001").write(tmp_path, "device")
    MuranoHTTP = murano_client("http").MuranoHTTP
    client = MuranoHTTP(
        murano_host=nginx_front.url(connector),
        murano_id="00000001",
        certfile=str(cert_file),
        pkeyfile=str(key_file),
        murano_cacert=str(nginx_front.ca_file),
        http_timeout=60,
    )
    assert client.using_tls() and client.is_activated()
    return connector, client


def test_client_certificate_mode_writes_reads_polls_and_records(cert_library):
    connector, client = cert_library
    # The first authenticated request provisions the device by its certificate.
    answer = client.http_write("temp", "19.5")
    assert (answer.code, answer.success) == (204, True), answer
    device = Device.objects.get(connector=connector, identity="00000001")
    assert device.status == Device.PROVISIONED
    assert client.http_write_multiple({"door": "open", "temp": "20"}).success
    read = client.http_read(["temp", "door"])
    assert (read.code, read.body) == (200, "temp=20&door=open")

    polled = client.http_long_poll(["temp", "door"], timeout_ms=500, modify_ts=0)
    assert (polled.code, polled.body) == (200, "temp=20&door=open")
    quiet = client.http_long_poll("temp", timeout_ms=300, modify_ts=time.time() + 2)
    assert (quiet.code, quiet.body) == (304, "Not modified")

    measured = time.time() - 60.5
    recorded = client.http_record({"temp": {measured: "17.25"}})
    assert (recorded.code, recorded.success) == (204, True), recorded
    assert points(connector, "temp")[0] == (at_microsecond(measured), "17.25")
    assert [value for _, value in points(connector, "temp")] == ["17.25", "19.5", "20"]
    assert client._http_listContent().status_code == 204
    assert client.exosite_timestamp().status_code == 200


def test_a_certificate_of_another_identity_is_refused_and_stores_nothing(
    nginx_front,  # noqa: F811
    make_connector,
    tmp_path,
):
    connector = make_connector(
        auth_mode="certificate", identity_type="base10", identity_length=8, _resources=RESOURCES
    )
    services.whitelist_device(connector, "00000001")
    cert_file, key_file = make_certificate("00000002").write(tmp_path, "stranger")
    MuranoHTTP = murano_client("http").MuranoHTTP
    client = MuranoHTTP(
        murano_host=nginx_front.url(connector),
        murano_id="00000002",
        certfile=str(cert_file),
        pkeyfile=str(key_file),
        murano_cacert=str(nginx_front.ca_file),
        http_timeout=60,
    )
    answer = client.http_write("temp", "1")
    assert answer.code in (401, 404) and not answer.success
    assert not DataPoint.objects.exists()
    assert Device.objects.get(connector=connector).status == Device.WHITELISTED
