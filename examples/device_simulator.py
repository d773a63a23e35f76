#!/usr/bin/env python3
"""A secure device, simulated: registers with Gatehouse by PIN and sends messages.

Python's standard library only (ssl, http.client, a small WebSocket client),
so it reads as a guide for firmware. It runs the flow of
docs/secure-registration.md:

  1. POST /v1.1/cert/devices/registrations with the client certificate
     → rid, PIN, nonce; the PIN is printed for the user;
  2. polls GET /v1.1/cert/devices/registrations/<rid>/status until the user
     has paired it in the browser (PENDING_DEVICE_COMPLETION);
  3. PUT /v1.1/cert/devices/registrations/<rid> with the nonce → access token;
  4. POST /v1.1/message with the token and the certificate;
  5. opens WebSocket /v1.1/websocket, sends "register" then "message".

Example, against `make run` on a laptop:

  python examples/device_simulator.py --url https://localhost:8443 \\
      --cacert var/devproxy/server-ca.pem --cert device-cert.pem --key device-key.pem \\
      --device-type dt0123… --vendor-device-id a1b2c3d4 --data '{"temperature": 21.5}'
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import time
from urllib.parse import urlsplit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FINAL_STATUSES = {"REGISTERED", "EXPIRED", "REVOKED"}


class DeviceApiError(Exception):
    """Gatehouse refused a call: the HTTP status and its {"error": {...}} message."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class SecureDevice:
    """One device: a base URL, the server's CA, and the device's certificate and key."""

    def __init__(self, url: str, cacert: str, cert: str, key: str, timeout: float = 30.0):
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise ValueError("the secure device API is served over https only")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cacert)
        # The client certificate is what makes the device "genuine" (seed flow step 3).
        self.context.load_cert_chain(cert, key)
        self.rid = self.pin = self.nonce = self.token = self.did = None

    # --- HTTPS ---------------------------------------------------------------------

    def call(self, method: str, path: str, body=None, token: str | None = None):
        """One HTTPS request; returns (data, headers) or raises DeviceApiError."""
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context, timeout=self.timeout
        )
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"bearer {token}"
        try:
            connection.request(method, "/v1.1" + path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
        finally:
            connection.close()
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = {}
        if response.status != 200:
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise DeviceApiError(
                response.status, error.get("message", raw.decode(errors="replace"))
            )
        return answer["data"], answer_headers

    def initiate(self, device_type: str, vendor_device_id: str) -> dict:
        data, _ = self.call(
            "POST",
            "/cert/devices/registrations",
            {"deviceTypeId": device_type, "vendorDeviceId": vendor_device_id},
        )
        self.rid, self.pin, self.nonce = data["rid"], data["pin"], data["nonce"]
        return data

    def status(self) -> dict:
        data, _ = self.call("GET", f"/cert/devices/registrations/{self.rid}/status")
        return data

    def wait_for(self, wanted: str, timeout: float = 600.0, interval: float = 2.0) -> dict:
        """Poll the status until it is `wanted`; raise if it ends any other way."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.status()
            if data["status"] == wanted:
                return data
            if data["status"] in FINAL_STATUSES:
                raise DeviceApiError(0, f"registration ended as {data['status']}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"still {data['status']} after {timeout} s")
            time.sleep(interval)

    def complete(self) -> dict:
        data, _ = self.call("PUT", f"/cert/devices/registrations/{self.rid}", {"nonce": self.nonce})
        self.token, self.did = data["accessToken"], data["did"]
        return data

    def send_message(self, data) -> tuple[str, dict]:
        """POST a message; returns its mid and the X-Rate-Limit-* headers."""
        answer, headers = self.call(
            "POST", "/message", {"sdid": self.did, "data": data}, token=self.token
        )
        limits = {name: value for name, value in headers.items() if name.startswith("x-rate")}
        return answer["mid"], limits

    def websocket(self) -> "WebSocket":
        return WebSocket.connect(self.host, self.port, "/v1.1/websocket", self.context)


class WebSocket:
    """Just enough RFC 6455 for a device: text frames, ping/pong, close."""

    def __init__(self, sock: ssl.SSLSocket, buffered: bytes = b""):
        self.sock = sock
        self.buffer = buffered

    @classmethod
    def connect(cls, host: str, port: int, path: str, context: ssl.SSLContext, timeout=30.0):
        raw = socket.create_connection((host, port), timeout=timeout)
        sock = context.wrap_socket(raw, server_hostname=host)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection during the handshake")
            head += chunk
        head, rest = head.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        if status_line.split(" ")[1:2] != ["101"]:
            sock.close()
            raise DeviceApiError(int(status_line.split(" ")[1]), "WebSocket handshake refused")
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines)}
        expected = base64.b64encode(
            hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()  # noqa: S324 (RFC 6455)
        ).decode()
        if fields.get("sec-websocket-accept") != expected:
            sock.close()
            raise ConnectionError("the server's Sec-WebSocket-Accept is wrong")
        return cls(sock, rest)

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        # Frames from a client are always masked (RFC 6455 §5.3).
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([0x80 | size])
        elif size < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_json(self, payload: dict) -> None:
        self._send_frame(0x1, json.dumps(payload).encode())

    def receive_json(self) -> dict:
        """The next text message; raises ConnectionError with the close code on close."""
        message = b""
        while True:
            first, second = self._read(2)
            opcode, size = first & 0x0F, second & 0x7F
            if size == 126:
                (size,) = struct.unpack("!H", self._read(2))
            elif size == 127:
                (size,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if second & 0x80 else b""
            payload = self._read(size)
            if mask:
                payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise ConnectionError(f"closed by the server with code {code}")
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode in (0x0, 0x1):
                message += payload
                if first & 0x80:
                    return json.loads(message)

    def close(self) -> None:
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        finally:
            self.sock.close()


def run(args) -> int:
    device = SecureDevice(args.url, args.cacert, args.cert, args.key)
    data = device.initiate(args.device_type, args.vendor_device_id)
    print(f"PIN {data['pin']}  (registration {data['rid']})")
    print(f"Pair it at {args.url}/pair/")
    device.wait_for("PENDING_DEVICE_COMPLETION", timeout=args.timeout)
    done = device.complete()
    print(f"registered as device {done['did']} of user {done['uid']}")
    payload = json.loads(args.data)
    mid, limits = device.send_message(payload)
    print(f"message {mid} sent over HTTPS; rate limits {limits}")
    socket_ = device.websocket()
    try:
        socket_.send_json(
            {"type": "register", "sdid": device.did, "Authorization": f"bearer {device.token}"}
        )
        print("WebSocket register:", socket_.receive_json())
        socket_.send_json({"type": "message", "sdid": device.did, "data": payload})
        print("WebSocket message:", socket_.receive_json())
    finally:
        socket_.close()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Gatehouse's https URL")
    parser.add_argument("--cacert", required=True, help="CA file that verifies the server")
    parser.add_argument("--cert", required=True, help="the device's client certificate (PEM)")
    parser.add_argument("--key", required=True, help="the device's private key (PEM)")
    parser.add_argument("--device-type", required=True, help="the connector id (dt…)")
    parser.add_argument(
        "--vendor-device-id",
        required=True,
        help="the device's identity: the one its certificate was made for (its CN)",
    )
    parser.add_argument("--data", default='{"stepCount": 100}', help="JSON to send")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for pairing")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (DeviceApiError, OSError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
