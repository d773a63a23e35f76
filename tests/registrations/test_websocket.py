"""The secure device channel, WebSocket /v1.1/websocket (docs/secure-registration.md), through the
real ASGI application (portal.asgi) and the real database.

Transactional: the consumer's database calls close and reopen connections, which a
test wrapped in one transaction would not survive.
"""

import json
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from django.conf import settings

from audit.models import Event
from devices.models import Device
from portal.asgi import application
from registrations import services
from registrations.consumers import POLICY_VIOLATION
from registrations.models import Message
from tests.support.secure_devices import in_thread, register
from tests.support.tls import make_certificate

pytestmark = pytest.mark.django_db(transaction=True)

# How long to wait for the consumer's reply: generous, only a broken consumer takes this long.
REPLY_SECONDS = 60


class DeviceSocket(ApplicationCommunicator):
    """A device's WebSocket as the TLS proxy forwards it: the certificate in a header.

    (Channels' own test communicator needs Daphne, which Gatehouse does not install.)
    """

    def __init__(self, issued=None, *, path="/v1.1/websocket", peer="127.0.0.1", secret=None):
        headers = []
        if issued is not None:
            headers.append((b"x-ssl-client-cert", quote(issued.cert_pem).encode()))
        secret = settings.PROXY_SHARED_SECRET if secret is None else secret
        if secret:
            headers.append((b"x-gatehouse-proxy-secret", secret.encode()))
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
            "client": [peer, 50000],
        }
        super().__init__(application, scope)

    async def connect(self) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return (await self.receive_output(timeout=REPLY_SECONDS))["type"] == "websocket.accept"

    async def ask(self, frame) -> dict:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.send_input({"type": "websocket.receive", "text": text})
        return await self.receive_json()

    async def receive_json(self) -> dict:
        output = await self.receive_output(timeout=REPLY_SECONDS)
        assert output["type"] == "websocket.send", output
        return json.loads(output["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(timeout=REPLY_SECONDS)


def run(scenario):
    """Run one async scenario on one event loop, as a real connection would."""
    in_thread(async_to_sync(scenario))


@pytest.fixture
def registered(secure_client, secure_connector, alice_browser):
    return register(secure_client, alice_browser, secure_connector)


def register_frame(registered, **changes) -> dict:
    frame = {
        "type": "register",
        "sdid": registered["did"],
        "Authorization": f"bearer {registered['accessToken']}",
    }
    return {**frame, **changes}


def test_register_then_message_are_each_acknowledged(registered, device_certificate):
    async def scenario():
        socket = DeviceSocket(device_certificate)
        assert await socket.connect()
        assert await socket.ask(register_frame(registered, cid="c1")) == {
            "data": {"code": "200", "message": "OK", "cid": "c1"}
        }
        reply = await socket.ask(
            {"type": "message", "sdid": registered["did"], "data": "data payload"}
        )
        assert set(reply["data"]) == {"mid"}
        await socket.disconnect()
        return reply["data"]["mid"]

    run(scenario)
    message = Message.objects.get()
    assert message.data == "data payload" and message.channel == Message.WEBSOCKET
    reasons = Event.objects.filter(identity="a1b2c3d4").values_list("reason", flat=True)
    assert "device channel opened over WebSocket" in list(reasons)
    assert Event.objects.filter(kind="message", reason__contains="via websocket").exists()


def test_the_handshake_without_a_certificate_is_refused():
    async def scenario():
        assert not await DeviceSocket(None).connect()

    run(scenario)


def test_a_certificate_header_from_outside_the_proxy_is_ignored(device_certificate):
    async def scenario():
        assert not await DeviceSocket(device_certificate, peer="203.0.113.7").connect()

    run(scenario)


@pytest.mark.parametrize("secret", ["", "a-guessed-secret"])
def test_a_certificate_header_without_the_proxy_secret_is_ignored(device_certificate, secret):
    async def scenario():
        # The same certificate with the proxy's secret is let in (the tests above).
        assert not await DeviceSocket(device_certificate, secret=secret).connect()

    run(scenario)


def test_with_no_proxy_secret_configured_no_certificate_header_is_believed(
    device_certificate, settings
):
    """No secret, so no proxy: not even a peer in TRUSTED_PROXIES (what web processes
    refuse to start with) is believed."""
    settings.PROXY_SHARED_SECRET = ""
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]

    async def scenario():
        assert not await DeviceSocket(device_certificate, secret="").connect()
        assert not await DeviceSocket(device_certificate, secret="anything").connect()

    run(scenario)


def test_other_websocket_paths_are_refused(device_certificate):
    async def scenario():
        assert not await DeviceSocket(device_certificate, path="/elsewhere").connect()

    run(scenario)


def test_bad_json_gets_an_error_frame_and_repeated_errors_close_the_socket(
    registered, device_certificate
):
    async def scenario():
        socket = DeviceSocket(device_certificate)
        await socket.connect()
        for frame in ["{not json", '["a list"]']:
            reply = await socket.ask(frame)
            assert reply["error"]["code"] == 400
        reply = await socket.ask({"type": "subscribe"})
        assert reply["error"]["code"] == 400
        closed = await socket.receive_output(timeout=REPLY_SECONDS)
        assert closed == {"type": "websocket.close", "code": POLICY_VIOLATION}

    run(scenario)


def test_a_wrong_token_is_refused_and_messages_need_a_register_first(
    registered, device_certificate
):
    async def scenario():
        socket = DeviceSocket(device_certificate)
        await socket.connect()
        reply = await socket.ask(register_frame(registered, Authorization="bearer nope"))
        assert reply["error"]["code"] == 401
        reply = await socket.ask({"type": "message", "sdid": registered["did"], "data": 1})
        assert reply["error"]["code"] == 401
        # A good register still works before the error budget runs out.
        assert (await socket.ask(register_frame(registered)))["data"]["code"] == "200"
        await socket.disconnect()

    run(scenario)
    assert not Message.objects.exists()


def test_a_message_for_another_device_is_refused(registered, device_certificate):
    async def scenario():
        socket = DeviceSocket(device_certificate)
        await socket.connect()
        await socket.ask(register_frame(registered))
        reply = await socket.ask({"type": "message", "sdid": "f" * 32, "data": {"a": 1}})
        assert reply["error"]["code"] == 403
        await socket.disconnect()

    run(scenario)
    assert not Message.objects.exists()


def test_the_token_with_another_devices_certificate_is_refused(registered, device_ca):
    sibling = make_certificate("thermostat-other", issuer=device_ca)

    async def scenario():
        socket = DeviceSocket(sibling)
        await socket.connect()
        reply = await socket.ask(register_frame(registered))
        assert reply["error"]["code"] == 403
        await socket.disconnect()

    run(scenario)


def test_releasing_the_device_closes_its_open_socket(registered, device_certificate, alice):
    device = Device.objects.get()

    async def scenario():
        socket = DeviceSocket(device_certificate)
        await socket.connect()
        await socket.ask(register_frame(registered))
        await database_sync_to_async(services.release_device)(alice, device, "127.0.0.1")
        reply = await socket.receive_json()
        assert reply["error"]["code"] == 401
        closed = await socket.receive_output(timeout=REPLY_SECONDS)
        assert closed == {"type": "websocket.close", "code": POLICY_VIOLATION}

    run(scenario)


def test_a_message_frame_with_unstorable_json_gets_a_400_frame(
    registered, device_certificate, settings
):
    settings.WEBSOCKET_MAX_ERRORS = 10

    async def scenario():
        socket = DeviceSocket(device_certificate)
        assert await socket.connect()
        await socket.ask(register_frame(registered))
        replies = []
        for data in ('"x\\u0000"', '{"\\u0000": 1}', '"\\ud800"', "[" * 65 + "]" * 65):
            frame = f'{{"type": "message", "sdid": "{registered["did"]}", "data": {data}}}'
            replies.append(await socket.ask(frame))
        await socket.disconnect()
        return replies

    replies = in_thread(async_to_sync(scenario))
    assert [reply["error"]["code"] for reply in replies] == [400] * 4
    assert not Message.objects.exists()
