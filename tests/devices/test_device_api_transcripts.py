"""docs/device-api.md's transcripts, replayed in order against gunicorn started as the
README says: each request is sent as the page shows it (with the placeholders filled
in), and each answer matches the page's status line, headers and body, apart from
the values a placeholder stands for and the headers every answer carries."""

import http.client
import re
import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from audit.events import Actor
from connectors import content
from devices import services
from tests.portal.test_proxy_trust import app_server  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)

DOC = settings.BASE_DIR / "docs" / "device-api.md"
TRANSCRIPT = re.compile(r"<!-- transcript: ([\w-]+) -->\n```http\n(.*?)```", re.S)
# What a placeholder in an answer may be.
PLACEHOLDERS = {
    "<token>": r"[A-Za-z0-9_-]{40}",
    "<unix-time>": r"\d{10}",
    "<http-date>": r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT",
}
# Headers on every answer, which the page leaves out: the transport's and the
# safety headers of every Gatehouse response.
EVERY_ANSWER = {
    "server",
    "date",
    "connection",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "content-security-policy",
}


def transcripts() -> list[tuple[str, str, str]]:
    """(name, request, answer) for each transcript of the page, in its order."""
    found = []
    for name, block in TRANSCRIPT.findall(DOC.read_text()):
        request, answer = re.split(r"\n(?=HTTP/1\.1 \d{3} )", block, maxsplit=1)
        found.append((name, request.strip("\n"), answer.strip("\n")))
    return found


def parse(message: str) -> tuple[str, list[tuple[str, str]], str]:
    """The first line, the headers and the body of one side of a transcript."""
    head, _, body = message.partition("\n\n")
    first, *lines = head.split("\n")
    return first, [tuple(line.split(": ", 1)) for line in lines], body


def pattern_of(text: str) -> re.Pattern:
    parts = re.split("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")", text)
    return re.compile("".join(PLACEHOLDERS.get(part, re.escape(part)) for part in parts))


@pytest.fixture
def fleet(make_connector, settings, tmp_path):
    """The page's connector: tokens, `myalias` defined, `fw.bin` in its content area."""
    settings.MEDIA_ROOT = tmp_path / "media"
    connector = make_connector(
        identity_type="base10", identity_length=8, _resources={"myalias": "number"}
    )
    upload = ContentFile(b"firmware v2\n", name="fw.bin")
    upload.content_type = "application/octet-stream"
    content.upload(connector, upload, description="the second release", actor=Actor(None, "test"))
    return connector


def test_the_documented_transcripts_are_what_gatehouse_answers(app_server, fleet):  # noqa: F811
    server = app_server()
    found = transcripts()
    assert len(found) >= 8, "docs/device-api.md lost its transcripts"
    services.whitelist_device(fleet, "00000001")
    now = int(time.time())
    learned = {
        "<connector-id>": fleet.pk,
        "<device-host>": fleet.device_host,
        "<an-hour-ago>": str(now - 3600),
        "<a-minute-ago>": str(now - 60),
    }
    for name, request, answer in found:
        for placeholder, value in learned.items():
            request = request.replace(placeholder, value)
        first, headers, body = parse(request)
        method, path, _ = first.split(" ")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for header, value in headers:
                connection.putheader(header, value)
            connection.endheaders(body.encode() if body else None)
            response = connection.getresponse()
            got_body = response.read().decode()
        finally:
            connection.close()

        status_line, documented, documented_body = parse(answer)
        assert f"HTTP/1.1 {response.status} {response.reason}" == status_line, name
        for header, value in documented:
            assert header in response.headers, f"{name}: {header} missing"
            assert pattern_of(value).fullmatch(response.headers[header]), (name, header)
        extra = {h.lower() for h in response.headers} - {h.lower() for h, _ in documented}
        assert extra <= EVERY_ANSWER, (name, extra - EVERY_ANSWER)
        # A refusal's one line ends in a newline, which the page cannot show.
        assert pattern_of(documented_body).fullmatch(got_body.removesuffix("\n")), (name, got_body)
        if "<token>" in documented_body:
            learned["<token>"] = got_body
