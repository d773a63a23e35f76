"""The secure device channel: WebSocket /v1.1/websocket (docs/secure-registration.md).

The certificate comes with the handshake (the proxy's header, believed only
from the proxy, exactly as for HTTP). The device then sends
{"type": "register", "sdid", "Authorization": "bearer <token>"} and after that
{"type": "message", "sdid", "data"}; each is answered, refusals as error frames
{"error": {"code", "message"}}. A socket that keeps misbehaving is closed.
"""

import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import WebsocketConsumer
from django.conf import settings
from django.http import HttpRequest

from core import inputs
from core.net import client_certificate, client_ip
from registrations import services
from registrations.artik.errors import refusal
from registrations.models import Message

# WebSocket close code for "policy violation" (RFC 6455 §7.4.1).
POLICY_VIOLATION = 1008


def handshake_request(scope) -> HttpRequest:
    """The handshake as an HttpRequest, so core.net judges its proxy headers as for HTTP."""
    request = HttpRequest()
    client = scope.get("client") or ("", 0)
    request.META["REMOTE_ADDR"] = client[0]
    for raw_name, raw_value in scope.get("headers", []):
        key = "HTTP_" + raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        # Repeated headers are joined, as Django does for HTTP requests.
        request.META[key] = f"{request.META[key]},{value}" if key in request.META else value
    return request


class SecureDeviceConsumer(WebsocketConsumer):
    """One device's WebSocket session: register with its token, then send messages."""

    def connect(self):
        request = handshake_request(self.scope)
        self.certificate = client_certificate(request)
        self.ip = client_ip(request)
        self.authorization = ""
        self.device = None
        self.errors = 0
        if self.certificate is None:
            # Closing before accepting refuses the handshake with 403.
            self.close()
            return
        self.accept()

    def disconnect(self, code):
        if self.device is not None:
            async_to_sync(self.channel_layer.group_discard)(
                services.device_group(self.device.pk), self.channel_name
            )

    def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            self._refuse(400, "send JSON in text frames")
            return
        if len(text_data) > settings.DEVICE_MAX_BODY_BYTES:
            self._refuse(400, f"frames are at most {settings.DEVICE_MAX_BODY_BYTES} bytes")
            return
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):
            self._refuse(400, "the frame is not valid JSON (or nests too deeply)")
            return
        if not isinstance(frame, dict):
            self._refuse(400, "the frame must be a JSON object")
            return
        problem = inputs.json_problem(frame)
        if problem:
            self._refuse(400, f"the frame cannot be accepted: {problem}")
            return
        cid = frame.get("cid")
        try:
            if frame.get("type") == "register":
                self._register(frame, cid)
            elif frame.get("type") == "message":
                self._message(frame, cid)
            else:
                self._refuse(400, 'type must be "register" or "message"', cid)
        except (services.RateLimited, services.RegistrationError) as exc:
            self._refuse(*refusal(exc), cid)

    def _register(self, frame: dict, cid) -> None:
        authorization = frame.get("Authorization")
        device = services.open_device_channel(
            authorization, frame.get("sdid"), self.certificate, self.ip
        )
        if self.device is not None and self.device.pk != device.pk:
            async_to_sync(self.channel_layer.group_discard)(
                services.device_group(self.device.pk), self.channel_name
            )
        self.device, self.authorization = device, authorization
        async_to_sync(self.channel_layer.group_add)(
            services.device_group(device.pk), self.channel_name
        )
        self._send({"data": {"code": "200", "message": "OK"}}, cid)

    def _message(self, frame: dict, cid) -> None:
        if self.device is None:
            raise services.InvalidToken('send {"type": "register"} with the access token first')
        # Checked again on every message: a released or revoked device stops at once.
        device = services.authenticate_secure_device(self.authorization, self.certificate, self.ip)
        stored, _ = services.post_message(
            device, frame.get("sdid"), frame.get("data"), Message.WEBSOCKET, self.ip
        )
        self._send({"data": {"mid": stored.mid}}, cid)

    def _send(self, payload: dict, cid=None) -> None:
        if cid is not None:
            next(iter(payload.values()))["cid"] = cid
        self.send(text_data=json.dumps(payload))

    def _refuse(self, code: int, message: str, cid=None) -> None:
        self.errors += 1
        self._send({"error": {"code": code, "message": message}}, cid)
        if self.errors >= settings.WEBSOCKET_MAX_ERRORS:
            self.close(code=POLICY_VIOLATION)

    def device_released(self, event):
        """Group message: the owner released the device, so its session ends."""
        self._send({"error": {"code": 401, "message": "the device was released by its owner"}})
        self.close(code=POLICY_VIOLATION)


class NoSuchSocket(WebsocketConsumer):
    """Any other WebSocket path: the handshake is refused."""

    def connect(self):
        self.close()
