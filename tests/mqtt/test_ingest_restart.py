"""Every message stored exactly once, across an ingest killed mid-stream and restarted."""

import signal
import uuid

import paho.mqtt.client as paho
import pytest

from devices import services
from devices.models import DataPoint
from mqtt import dynsec, receipts, sync, topics
from mqtt.ingest import Ingest, password
from mqtt.management.commands.mqtt_ingest import SUBSCRIBED
from mqtt.models import IngestReceipt
from tests.mqtt.conftest import eventually
from tests.support.processes import Processes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provisioned(broker_settings, connector, whitelist):
    whitelist(connector, "00000051")
    token = services.activate_device(connector, "00000051", None, "127.0.0.1")
    return token, topics.namespace(connector.pk, "00000051") + "/resource/myalias"


def message(topic: str, mid: int, value: str, *, dup: bool = False) -> paho.MQTTMessage:
    made = paho.MQTTMessage(mid=mid, topic=topic.encode())
    made.payload, made.qos, made.dup = value.encode(), 1, dup
    return made


def values(connector) -> list[str]:
    return sorted(
        DataPoint.objects.filter(device__connector=connector).values_list("value", flat=True),
        key=int,
    )


def test_a_redelivered_message_that_was_stored_is_not_stored_again(provisioned, connector):
    _, topic = provisioned
    ingest = Ingest(client_id="ingest-a", url="mqtt://127.0.0.1:1")
    ingest._receipts = receipts.Receipts("ingest-a")
    ingest.store_batch([message(topic, 1, "1"), message(topic, 2, "2")])
    # Killed before acknowledging: the broker delivers both again, marked DUP, then a new one.
    restarted = Ingest(client_id="ingest-a", url="mqtt://127.0.0.1:1")
    restarted._receipts = receipts.Receipts("ingest-a")
    assert restarted._receipts.sequence == 2
    restarted.store_batch(
        [message(topic, 1, "1", dup=True), message(topic, 2, "2", dup=True), message(topic, 3, "3")]
    )
    assert values(connector) == ["1", "2", "3"]


def test_a_redelivered_message_never_stored_is_stored(provisioned, connector):
    _, topic = provisioned
    ingest = Ingest(client_id="ingest-b", url="mqtt://127.0.0.1:1")
    ingest._receipts = receipts.Receipts("ingest-b")
    ingest.store_batch([message(topic, 7, "1")])
    # Packet id 7 came round again long after: the old receipt is not this message's.
    ingest._receipts.sequence += receipts.RECENT
    ingest.store_batch([message(topic, 7, "2", dup=True), message(topic, 8, "3", dup=True)])
    # Two deliveries of one message in one batch (a reconnection): stored once.
    ingest.store_batch([message(topic, 9, "4"), message(topic, 9, "4", dup=True)])
    assert values(connector) == ["1", "2", "3", "4"]
    assert IngestReceipt.objects.get(client_id="ingest-b", packet_id=7).sequence > 1


def test_an_ingest_killed_mid_stream_loses_and_repeats_nothing(
    provisioned, connector, broker_settings, dynsec_client, mqtt_device, tmp_path
):
    token, topic = provisioned
    sync.flush(dynsec_client)
    device = mqtt_device(topics.username(connector.pk, "00000051"), token)
    assert device.accepted()
    # One device sends the whole stream: its write allowance must not drop any of it.
    environment = {**broker_settings.settings(), "RATE_LIMIT_WRITE": "1000000/1"}
    processes = Processes(tmp_path, **environment)
    client_id = f"kill-{uuid.uuid4()}"
    command = ["python", "manage.py", "mqtt_ingest", "--client-id", client_id]
    processes.start("ingest", command)
    try:
        eventually(lambda: SUBSCRIBED in processes.log("ingest"), "no ingest")
        count = 3000
        sent = [device.client.publish(topic, str(n), qos=1) for n in range(1, count + 1)]
        eventually(lambda: len(values(connector)) >= 200, "nothing stored")
        processes.running[0][1].send_signal(signal.SIGKILL)
        processes.running[0][1].wait()
        for info in sent:
            info.wait_for_publish(60)
        processes.start("ingest-again", command)
        eventually(lambda: len(values(connector)) >= count, "messages were lost")
        # Anything delivered twice would be stored within the next batches.
        device.publish(topic, str(count + 1))
        eventually(lambda: str(count + 1) in values(connector), "the last message")
        assert values(connector) == [str(n) for n in range(1, count + 2)]
    finally:
        processes.stop()
        # Its session would keep taking a share of the stream from the next tests' ingests.
        forget = dynsec.connect(
            broker_settings.url, topics.INGEST_USERNAME, password(), client_id=client_id
        )
        forget.disconnect()
        forget.loop_stop()
