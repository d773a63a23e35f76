"""ARTIK's published secure-registration transcripts, as docs/artik.md shows them,
replayed through nginx over TLS with the device's client certificate: each answer
matches header for header and byte for byte, apart from the ids, the PIN, the times
and the headers nginx and Gatehouse add to every answer."""

import re

import pytest
from django.conf import settings

from tests.registrations.test_artik_sdk import TlsDevice
from tests.support.secure_devices import REGISTRATIONS, pair, serial_suffix_of

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": (
        "Origin, X-Requested-With, Content-Type, Accept, Referer, User-Agent, Authorization"
    ),
    "Access-Control-Allow-Methods": "POST, GET, PUT, DELETE, OPTIONS",
    "Allow": "*",
}


def documented_transcripts() -> dict[str, tuple[dict, str]]:
    """docs/artik.md's transcripts by name: the answer's headers and body."""
    text = (settings.BASE_DIR / "docs" / "artik.md").read_text()
    found = {}
    for name, block in re.findall(r"<!-- transcript: (\w+) -->\n```\n(.*?)```", text, re.S):
        head, body = block[block.index("HTTP/1.1 200 OK") :].split("\n\n", 1)
        headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
        found[name] = (headers, body.strip())
    return found


TRANSCRIPTS = documented_transcripts()

# What may differ: ids, the PIN, times (ms and s) and the reset times.
VARIABLE = re.compile(r"[0-9a-f]{32}|[0-9A-Z]{8}(?=\")|\d{10,13}")
# Headers Gatehouse and nginx add to every answer: the transport's, and the safety
# headers every Gatehouse response carries; the message also carries CORS headers.
ADDED = {
    "Server",
    "Date",
    "Connection",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
    "Content-Security-Policy",
}


def same_shape(expected: str, actual: str) -> bool:
    return VARIABLE.sub("#", expected) == VARIABLE.sub("#", actual)


def assert_matches(response, transcript, added=ADDED):
    headers, body = transcript
    actual = response.data.decode()
    assert response.status == 200
    assert same_shape(body, actual), actual
    # ARTIK's ids are as long as ours, so the length is the transcript body's.
    assert headers["Content-Length"] == str(len(body.encode()))
    for name, value in headers.items():
        if name == "X-Rate-Limit-Reset":
            assert re.fullmatch(r"\d{10}/\d{10}", response.headers[name])
        elif name == "X-Rate-Limit-Remaining":
            assert response.headers[name] == "99/999"
        else:
            assert response.headers[name] == value, name
    extra = set(response.headers) - set(headers)
    assert extra <= added, extra


@pytest.fixture
def device(secure_frontend, device_certificate, tmp_path):
    return TlsDevice(secure_frontend, *device_certificate.write(tmp_path, "device"))


def test_the_secure_registration_transcripts_match_header_for_header(
    device, secure_connector, alice_browser, device_certificate
):
    assert set(TRANSCRIPTS) == {"initiate", "status", "complete", "message"}
    body = {"deviceTypeId": secure_connector.pk, "vendorDeviceId": "a1b2c3d4"}
    initiated = device.call("POST", REGISTRATIONS, body)
    assert_matches(initiated, TRANSCRIPTS["initiate"])
    started = initiated.json()["data"]
    pair(alice_browser, secure_connector, started["pin"], serial_suffix_of(device_certificate))

    assert_matches(
        device.call("GET", f"{REGISTRATIONS}/{started['rid']}/status"), TRANSCRIPTS["status"]
    )

    completed = device.call("PUT", f"{REGISTRATIONS}/{started['rid']}", {"nonce": started["nonce"]})
    assert_matches(completed, TRANSCRIPTS["complete"])
    done = completed.json()["data"]

    message = device.call(
        "POST",
        "/v1.1/message",
        {"sdid": done["did"], "data": {"stepCount": 100, "timeInBed": 200}},
        {"Authorization": f"bearer {done['accessToken']}"},
    )
    assert_matches(message, TRANSCRIPTS["message"], added=ADDED | set(CORS))


@pytest.mark.parametrize(
    "path", [REGISTRATIONS, f"{REGISTRATIONS}/{'0' * 32}", "/v1.1/messages", "/v1.1/nowhere"]
)
def test_a_preflight_is_answered_with_the_cors_headers_and_no_credentials(device, path):
    response = device.call(
        "OPTIONS",
        path,
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    if path.endswith("nowhere"):
        assert response.status == 404
        assert response.json() == {"error": {"code": 404, "message": "no such call"}}
    else:
        assert response.status == 200 and response.data == b""
    for name, value in CORS.items():
        assert response.headers[name] == value
