"""Property-based tests of the device-facing routes: whatever a device
sends, the answer is never a 5xx, and a refusal (4xx) changes nothing.

Hypothesis builds requests from well-formed pieces (real connector ids, tokens,
identities, passwords, registration ids) mixed with hostile ones (NUL, lone
surrogates, %-escapes, deep JSON, garbage bodies and headers), and sends them
through the real URL conf to the real database: run on PostgreSQL, which
refuses NUL in text, as well as on SQLite. Examples are derandomized and kept
in no example database, so every run tries the same requests.
"""

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.models import Resource
from devices.models import Credential, DataPoint, Device
from registrations.models import Message, Registration, SecureDevice
from tests.support.clients import DeviceClient, basic
from tests.support.secure_devices import REGISTRATIONS, SecureDeviceClient, register
from tests.support.tls import make_certificate

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"
EXAMPLES = settings(
    max_examples=150,
    # The machine is shared and loaded: no per-example time limit.
    deadline=None,
    derandomize=True,
    database=None,
    # The database fixtures are built once per test; each example checks its own
    # before and after, and clears the rate-limit counters.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

HOSTILE = [
    "\x00",
    "0000000\x00",
    "dev-\x00",
    "%00",
    "\ud800",
    "\\u0000",
    " ",
    "",
    "\n",
    "é",
    "%",
    "&",
    "=",
    ":",
    "/",
    "..",
    "+",
]


def _hostile_text(max_size: int = 24) -> st.SearchStrategy[str]:
    text = st.text(max_size=max_size)
    return st.one_of(
        text,
        st.sampled_from(HOSTILE),
        st.builds(lambda a, b: a + b, st.sampled_from(HOSTILE), text),
        # NUL is what PostgreSQL refuses; it gets a branch of its own.
        st.builds(lambda a, b: a + "\x00" + b, text, text),
    )


def _raw(text: str) -> bytes:
    """`text` as a client would put it on the wire, lone surrogates and all."""
    return text.encode("utf-8", "surrogatepass")


def _quote(text: str) -> str:
    return quote(_raw(text), safe="")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(_raw(f"{user}:{password}")).decode()


def _header_text() -> st.SearchStrategy[str]:
    # A real server hands the app header values decoded as latin-1.
    return st.text(st.characters(max_codepoint=255), max_size=60)


def snapshot() -> tuple:
    """What a refused request must leave as it was (the event log records refusals)."""
    return (
        list(
            Device.objects.order_by("pk").values_list(
                "pk", "status", "credential_version", "owner_id", "identity"
            )
        ),
        list(Credential.objects.order_by("pk").values_list("pk", "state", "kind", "token_hash")),
        list(DataPoint.objects.order_by("pk").values_list("pk", "value")),
        list(Registration.objects.order_by("pk").values_list("pk", "status", "device_id")),
        list(Message.objects.order_by("pk").values_list("pk")),
        list(SecureDevice.objects.order_by("pk").values_list("pk", "token_hash")),
    )


def check(send) -> None:
    """Send one request: never a 5xx, and nothing changed if it was refused."""
    cache.clear()  # rate limits must not hide what lies behind them
    before = snapshot()
    response = send()
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert snapshot() == before, response.status_code


@pytest.fixture
def world(
    make_connector, whitelist, secure_connector, device_ca, device_certificate, alice_browser
):
    """A token connector with a provisioned device, a password connector with one,
    whitelisted identities, and a secure connector with a registered device and a
    pending registration."""
    tokens = make_connector(
        identity_type="base10",
        identity_length=8,
        _resources={"myalias": Resource.NUMBER, "flag": Resource.BOOLEAN, "doc": Resource.JSON},
    )
    passwords = make_connector(auth_mode="password", _resources={"myalias": Resource.NUMBER})
    for identity in ("00000001", "00000002", "00000003"):
        whitelist(tokens, identity)
    whitelist(passwords, "dev-1")
    whitelist(passwords, "dev-2")
    token = DeviceClient(tokens).activate("00000001").content.decode()
    assert DeviceClient(passwords).activate("dev-1", PASSWORD).status_code == 204
    secure = SecureDeviceClient(device_certificate)
    registered = register(secure, alice_browser, secure_connector)
    # A second device of the same vendor, whose registration waits for its user.
    second_certificate = make_certificate("e5f6a7b8", issuer=device_ca)
    pending = SecureDeviceClient(second_certificate).initiate(secure_connector, "e5f6a7b8")
    pending = pending.json()["data"]
    return {
        "tokens": tokens,
        "passwords": passwords,
        "secure": secure_connector,
        "certificates": [device_certificate, second_certificate],
        "token": token,
        "registered": registered,
        "pending": pending,
    }


def _prefixes(world) -> st.SearchStrategy[tuple[str, dict]]:
    """How a request names its connector: device host or /c/<id>/ (four times in
    five), else a malformed id under /c/."""
    connectors = [world["tokens"], world["passwords"], world["secure"]]
    named = [("", {"HTTP_HOST": c.device_host}) for c in connectors]
    named += [(f"/c/{c.pk}", {}) for c in connectors]
    return st.tuples(
        st.integers(min_value=0, max_value=4),
        st.sampled_from(named),
        _hostile_text().map(lambda text: (f"/c/{_quote(text)}", {})),
    ).map(lambda drawn: drawn[1] if drawn[0] else drawn[2])


def _authorizations(world) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.just(f"Token {world['token']}"),
        st.just(basic("", world["token"])),
        st.just(basic("dev-1", PASSWORD)),
        st.builds(lambda t: f"Token {t}", _header_text()),
        st.builds(_basic, _hostile_text(), _hostile_text()),
        st.builds(_basic, st.sampled_from(["dev-1", "00000001"]), _hostile_text()),
        st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=40)),
        _header_text(),
    )


def _form_bodies() -> st.SearchStrategy[bytes]:
    names = st.one_of(
        st.sampled_from(["id", "password", "myalias", "flag", "doc"]), _hostile_text()
    )
    values = st.one_of(
        st.sampled_from(["00000002", "00000003", "dev-2", PASSWORD, "42", "true", "[1]"]),
        _hostile_text(),
        st.integers(min_value=0, max_value=6000).map(lambda n: "[" * n + "]" * n),
    )
    encode = lambda pairs: urlencode(pairs, errors="surrogatepass").encode()  # noqa: E731
    activation = st.fixed_dictionaries({"id": values}, optional={"password": values}).map(
        lambda fields: encode(list(fields.items()))
    )
    return st.one_of(
        # Activation's own fields (twice as likely), then any fields, then anything at all.
        activation,
        activation,
        st.lists(st.tuples(names, values), max_size=4).map(encode),
        _hostile_text(60).map(_raw),
        st.binary(max_size=60),
    )


@EXAMPLES
@given(data=st.data())
def test_activation_never_fails_and_a_refusal_changes_nothing(world, data):
    prefix, host = data.draw(_prefixes(world))
    body = data.draw(_form_bodies())
    content_type = data.draw(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=utf-8",
                "application/json",
                "text/plain; charset=x",
            ]
        )
    )
    client = DeviceClient(world["tokens"], raise_request_exception=False)
    check(
        lambda: client.generic(
            "POST", f"{prefix}/provision/activate", body, content_type=content_type, **host
        )
    )


@EXAMPLES
@given(data=st.data())
def test_data_writes_never_fail_and_a_refusal_changes_nothing(world, data):
    prefix, host = data.draw(_prefixes(world))
    authorization = data.draw(_authorizations(world))
    body = data.draw(_form_bodies())
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    client = DeviceClient(world["tokens"], raise_request_exception=False)
    check(
        lambda: client.generic(
            "POST",
            f"{prefix}/api:v1/stack/alias",
            body,
            content_type="application/x-www-form-urlencoded",
            **host,
            **headers,
        )
    )


@EXAMPLES
@given(data=st.data())
def test_data_reads_never_fail_and_change_nothing(world, data):
    prefix, host = data.draw(_prefixes(world))
    authorization = data.draw(_authorizations(world))
    aliases = data.draw(
        st.lists(
            st.one_of(st.sampled_from(["myalias", "flag", "doc"]), _hostile_text()), max_size=3
        )
    )
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    if data.draw(st.booleans()):
        # Long polls: short timeouts only, and hostile ones.
        headers["HTTP_REQUEST_TIMEOUT"] = data.draw(
            st.one_of(st.sampled_from(["1", "20", "0", "-1", "1e3", "9" * 12]), _header_text())
        )
        since = data.draw(st.one_of(st.none(), _header_text(), st.sampled_from(["0", "9" * 11])))
        if since is not None:
            headers["HTTP_IF_MODIFIED_SINCE"] = since
    query = "&".join(_quote(alias) for alias in aliases)
    client = DeviceClient(world["tokens"], raise_request_exception=False)
    check(lambda: client.get(f"{prefix}/api:v1/stack/alias?{query}", **host, **headers))


@EXAMPLES
@given(data=st.data())
def test_timestamp_and_pki_files_never_fail(world, data):
    prefix, host = data.draw(_prefixes(world))
    connector_id = data.draw(
        st.tuples(
            st.booleans(),
            st.sampled_from([world["tokens"].pk, world["secure"].pk]),
            _hostile_text(),
        ).map(lambda drawn: drawn[1] if drawn[0] else drawn[2])
    )
    path = data.draw(
        st.sampled_from(
            [
                f"{prefix}/timestamp",
                "/timestamp",
                f"/pki/{_quote(connector_id)}/ca.pem",
                f"/pki/{_quote(connector_id)}/crl",
                f"/pki/{_quote(connector_id)}/crl.pem",
            ]
        )
    )
    method = data.draw(st.sampled_from(["GET", "POST", "HEAD"]))
    client = DeviceClient(world["tokens"], raise_request_exception=False)
    check(lambda: client.generic(method, path, **(host if path.startswith(prefix) else {})))


def _json_values(world) -> st.SearchStrategy:
    known = st.sampled_from(
        [
            world["secure"].pk,
            world["registered"]["did"],
            world["pending"]["nonce"],
            "a1b2c3d4",
            "e5f6a7b8",
        ]
    )
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), known, _hostile_text()
    )
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(_hostile_text(8), children, max_size=3),
        ),
        max_leaves=8,
    )


def _json_bodies(world) -> st.SearchStrategy[bytes]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "deviceTypeId": _json_values(world),
            "vendorDeviceId": _json_values(world),
            "nonce": _json_values(world),
            "sdid": _json_values(world),
            "data": _json_values(world),
        },
    )
    return st.one_of(
        fields.map(json.dumps),
        _json_values(world).map(json.dumps),
        st.integers(min_value=0, max_value=6000).map(
            lambda n: '{"data": ' + "[" * n + "]" * n + "}"
        ),
        st.sampled_from(['{"data": "\\u0000"}', '{"sdid": "\\ud800"}', '{"\\u0000": 1}']),
        _hostile_text(60),
    ).map(_raw)


@EXAMPLES
@given(data=st.data())
def test_secure_device_calls_never_fail_and_a_refusal_changes_nothing(world, data):
    prefix, host = data.draw(
        st.one_of(st.just(("", {})), st.just((f"/c/{world['secure'].pk}", {})), _prefixes(world))
    )
    rid = data.draw(
        st.one_of(
            st.sampled_from([world["pending"]["rid"], world["registered"]["rid"]]),
            _hostile_text().map(lambda text: _quote(text)),
        )
    )
    method, path = data.draw(
        st.sampled_from(
            [
                ("POST", REGISTRATIONS),
                ("GET", f"{REGISTRATIONS}/{rid}/status"),
                ("PUT", f"{REGISTRATIONS}/{rid}"),
                ("POST", "/v1.1/message"),
                ("DELETE", "/v1.1/message"),
            ]
        )
    )
    body = data.draw(_json_bodies(world))
    authorization = data.draw(
        st.one_of(
            st.none(),
            st.just(f"bearer {world['registered']['accessToken']}"),
            st.builds(lambda t: f"bearer {t}", _header_text()),
            _header_text(),
        )
    )
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    certificate = data.draw(st.sampled_from([None, *world["certificates"]]))
    client = SecureDeviceClient(certificate)
    client.raise_request_exception = False
    check(lambda: client.send_json(method, prefix + path, body, **host, **headers))
