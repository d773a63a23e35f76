"""examples/device_simulator.py from the command line, against nginx and the ASGI app,
while the user pairs the device."""

import subprocess
import sys

import pytest
from django.conf import settings

from registrations.models import Message
from tests.support.secure_devices import pair, serial_suffix_of

SIMULATOR = settings.BASE_DIR / "examples" / "device_simulator.py"


def test_the_simulator_registers_and_sends_over_https_and_the_websocket(
    secure_frontend, secure_connector, device_certificate, alice_browser, tmp_path
):
    cert_file, key_file = device_certificate.write(tmp_path, "device")
    device = subprocess.Popen(
        [
            sys.executable,
            str(SIMULATOR),
            "--url",
            secure_frontend.url,
            "--cacert",
            str(secure_frontend.ca_file),
            "--cert",
            str(cert_file),
            "--key",
            str(key_file),
            "--device-type",
            secure_connector.pk,
            "--vendor-device-id",
            "a1b2c3d4",
            "--data",
            '{"temperature": 21.5}',
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = device.stdout.readline()
        assert first.startswith("PIN "), first + device.stdout.read()
        pin = first.split()[1]
        paired = pair(alice_browser, secure_connector, pin, serial_suffix_of(device_certificate))
        assert paired.status_code == 302
        output = first + device.communicate(timeout=60)[0]
    finally:
        if device.poll() is None:
            device.kill()
            device.wait()
    assert device.returncode == 0, output
    assert "registered as device" in output
    assert "WebSocket register: {'data': {'code': '200', 'message': 'OK'}}" in output
    assert "WebSocket message: {'data': {'mid':" in output
    assert list(Message.objects.values_list("data", flat=True)) == [{"temperature": 21.5}] * 2


@pytest.mark.parametrize("missing", ["--cert", "--device-type"])
def test_the_simulator_says_what_it_needs(missing):
    arguments = ["--url", "https://localhost:1", "--cacert", "ca.pem", "--cert", "c.pem"]
    arguments += ["--key", "k.pem", "--device-type", "dt0", "--vendor-device-id", "a"]
    index = arguments.index(missing)
    del arguments[index : index + 2]
    result = subprocess.run(
        [sys.executable, str(SIMULATOR), *arguments], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert missing in result.stderr
