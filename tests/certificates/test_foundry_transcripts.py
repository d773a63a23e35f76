"""The curl transcripts in docs/foundry.md are what Gatehouse answers: each is replayed
here and compared status line, header for header and body byte for byte, apart from
what differs per run (ids, keys, certificates, lengths that follow from them).

A transcript is a ```console block after a `<!-- transcript: NAME -->` line; the
scenarios below run in document order and share the certificate they generate.
Date, Server and Connection come from the HTTP server in front and are not compared.
"""

import json
import re
from pathlib import Path

import pytest
from django.test import Client

from tests.support.clients import bearer_client

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "foundry.md"
TRANSCRIPT = re.compile(r"<!-- transcript: ([a-z-]+) -->\n```console\n(.*?)\n```", re.S)
SERVER_HEADERS = {"date", "server", "connection"}
# What differs from run to run, in the order it is replaced.
VARYING = [
    (re.compile(r"[0-9a-f]{64}"), "<id>"),
    # Base64 PEM, kept to its first 36 characters: "-----BEGIN CERTIFICATE-----" or
    # "-----BEGIN RSA PRIVATE KEY", as the document shortens it.
    (re.compile(r'"(LS0t[A-Za-z0-9+/]{32})[A-Za-z0-9+/=]*…?"'), r'"\1…"'),
    (re.compile(r"(?m)^Content-Length: [0-9]+$"), "Content-Length: <n>"),
]


def transcripts() -> dict[str, str]:
    return dict(TRANSCRIPT.findall(DOC.read_text(encoding="utf-8")))


def response_of(text: str) -> str:
    """The response part of a transcript: from the status line on, without server headers."""
    lines = text.split("\n")
    start = next(n for n, line in enumerate(lines) if line.startswith("HTTP/1.1 "))
    head, _, body = "\n".join(lines[start:]).partition("\n\n")
    status, *headers = head.split("\n")
    kept = sorted(h for h in headers if h.split(":", 1)[0].lower() not in SERVER_HEADERS)
    return "\n".join([status, *kept]) + "\n\n" + body


def rendered(response) -> str:
    """A response as `curl -si` prints it (minus the server's own headers)."""
    assert int(response.headers["Content-Length"]) == len(response.content)
    lines = [f"HTTP/1.1 {response.status_code} {response.reason_phrase}"]
    lines += sorted(f"{name}: {value}" for name, value in response.headers.items())
    return "\n".join(lines) + "\n\n" + response.content.decode("utf-8")


def shape(text: str) -> str:
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return text


@pytest.fixture
def foundry(make_connector, owner, whitelist):
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    whitelist(connector, "00000007")
    return connector, bearer_client(owner), {"HTTP_HOST": connector.device_host}


def scenarios(connector, client, host):
    """(transcript name, request) in the order the document shows them."""
    state = {}

    def generate():
        response = client.get("/foundry/certificates/generate", **host)
        state.update(json.loads(response.content))
        return response

    def provision():
        body = {"arn": state["arn"], "certId": state["id"], "deviceId": "00000007"}
        return client.post("/foundry/certificates/provision", {**body, "topics": ["XiQ/#"]}, **host)

    def revoke():
        body = {"certId": state["id"], "deviceId": "00000007"}
        return client.delete("/foundry/certificates/revoke", body, **host)

    return [
        ("generate", generate),
        (
            "generate-with-topics",
            lambda: client.get(
                "/foundry/certificates/generate?topics=%5B%22XiQ%2F%23%22%5D", **host
            ),
        ),
        (
            "generate-bad-topic",
            lambda: client.get(
                "/foundry/certificates/generate?topics=%5B%221%2F%23%2F1%22%5D", **host
            ),
        ),
        ("generate-no-token", lambda: Client().get("/foundry/certificates/generate", **host)),
        ("provision", provision),
        (
            "provision-unknown-device",
            lambda: client.post(
                "/foundry/certificates/provision",
                {"certId": state["id"], "deviceId": "00000099"},
                **host,
            ),
        ),
        ("revoke", revoke),
        ("revoke-again", revoke),
    ]


def test_every_transcript_in_the_document_is_what_gatehouse_answers(foundry):
    documented = transcripts()
    played = scenarios(*foundry)
    assert [name for name, _ in played] == list(documented)
    for name, request in played:
        expected = shape(response_of(documented[name]))
        actual = shape(rendered(request()))
        assert actual == expected, f"docs/foundry.md transcript {name!r} drifted:\n{actual}"


def test_the_generate_body_is_laid_out_as_foundrys_example(foundry):
    """Key order, two-space indents and value formats of Foundry's generate answer."""
    connector, client, host = foundry
    body = client.get("/foundry/certificates/generate", **host).content.decode()
    assert re.fullmatch(
        r'\{\n  "arn": "arn:aws:iot:us-east-1:000000000000:cert/(?P<id>[0-9a-f]{64})",\n'
        r'  "id": "(?P=id)",\n'
        r'  "cert": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t[A-Za-z0-9+/]+={0,2}",\n'
        r'  "private": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ[A-Za-z0-9+/]+={0,2}"\n\}',
        body,
    ), body
