"""Every console page fits a laptop and a phone: nothing makes a page scroll sideways.

The pages come from the URL configuration, as tests/accounts/test_roles.py walks it, so
a page added later is walked too; each path parameter names a real row of a connector
filled the way a maker's is (devices in every state with names and tags, an import
with errors, a certificate authority with an issued certificate, a trust anchor, a
bulk action, content, an app, a securely registered device). A signed-in admin walks
every console page; an ordinary user walks pairing, their devices and their apps.

With GATEHOUSE_SCREENSHOTS set to a folder, the walk also keeps a screenshot of each
main page at each size (bench/screenshots.py turns them into docs/screenshots/).
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone
from oauth2_provider.models import AccessToken
from playwright.sync_api import expect

from accounts import oauth
from audit.events import Actor
from audit.models import Event
from certificates import services as certificates
from connectors import content as connector_content
from connectors.models import Connector, Resource
from devices import services
from devices.models import BulkAction, Device, WhitelistImport
from devices.services import DeviceError
from devices.services.data import write_data
from tests.browser.conftest import LAPTOP, PHONE
from tests.support import urls
from tests.support.secure_devices import (
    SecureDeviceClient,
    register,
    serial_suffix_of,
    trust,
)
from tests.support.tls import make_ca, make_certificate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
SCREENSHOTS = os.environ.get("GATEHOUSE_SCREENSHOTS")
# The console's pages by namespace; "" holds the home page (and the API, whose
# routes answer JSON and are left out by their content type).
ADMIN_NAMESPACES = {"", "connectors", "devices", "certificates", "registrations", "accounts"}
USER_NAMESPACES = {"", "registrations", "accounts"}
# Routes that are not pages of the console: Django's admin, the device API and its
# files, the OAuth endpoints, the API's documentation (Swagger UI's own layout).
NOT_CONSOLE = re.compile(r"^(admin/|c/|pki/|v1\.1/|oauth/|api/|healthz|timestamp|login/|logout/)")
# Main pages, kept as screenshots: name -> route.
MAIN_PAGES = {
    "overview": "connectors/<str:connector_id>/overview/",
    "connectors": "connectors/",
    "connector-settings": "connectors/<str:connector_id>/settings/",
    "devices": "connectors/<str:connector_id>/devices/",
    "device": "connectors/<str:connector_id>/devices/<int:device_id>/",
    "import": "connectors/<str:connector_id>/imports/<int:import_id>/",
    "certificates": "connectors/<str:connector_id>/certificates/",
    "logs": "connectors/<str:connector_id>/logs/",
    "apps": "apps/",
    "my-devices": "my/devices/",
    "pair": "pair/",
}

# Which element makes the page wider than the viewport: the outermost ones that stick
# out, leaving out what a scrolling container of their own keeps inside. Then the
# containers that cut their content off instead (overflow hidden, not scrolling), as
# a card would a wide table: the table belongs in a scrolling wrapper.
OVERFLOW = """
() => {
  const root = document.documentElement;
  const limit = root.clientWidth;
  const outside = (el) => el.getBoundingClientRect().right > limit + 0.5;
  const contained = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible" && !outside(up)) return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    [...el.classList].map((c) => "." + c).join("");
  const where = (el) => {
    const path = [];
    for (let up = el; up && up !== document.body; up = up.parentElement) path.unshift(name(up));
    return path.join(" > ");
  };
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    if (root.scrollWidth > limit && outside(el) && !contained(el) &&
        (el.parentElement === document.body || !outside(el.parentElement))) {
      found.push(`${where(el)} (right edge ${Math.round(box.right)})`);
    }
    const style = getComputedStyle(el);
    if (["hidden", "clip"].includes(style.overflowX) && el.clientWidth > 1 &&
        style.textOverflow !== "ellipsis" && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${where(el)} cuts off ${el.scrollWidth - el.clientWidth} px`);
    }
  }
  if (root.scrollWidth <= limit && found.length === 0) return null;
  return {width: root.scrollWidth, viewport: limit, culprits: found.slice(0, 5)};
}
"""


def console_routes(namespaces: set[str]) -> list[str]:
    return [
        route
        for route, namespace, _ in urls.walk(get_resolver().url_patterns)
        if namespace in namespaces and not NOT_CONSOLE.match(route)
    ]


def fill(route: str, values: dict) -> str:
    return urls.fill(route, values, "the console's path values")


def overflow(page) -> dict | None:
    return page.evaluate(OVERFLOW)


def keep_screenshot(page, route: str) -> None:
    names = [name for name, main in MAIN_PAGES.items() if main == route]
    if SCREENSHOTS and names:
        width = page.viewport_size["width"]
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{names[0]}-{width}.png"))


def sign_in(page, user, live_server) -> None:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )


def is_page(client: Client, path: str) -> bool:
    """Whether GET `path` answers a page: files, JSON feeds and progress polls are not
    pages, and a route that only takes a form's POST answers 405."""
    response = client.get(path)
    assert response.status_code < 500, (path, response.status_code)
    return response.status_code != 405 and response["Content-Type"].startswith("text/html")


def visit_all(page, user, routes, values: dict, shots=()) -> tuple[list[str], list[str]]:
    """Open every route that answers a page; (pages seen, pages that overflow). The
    main pages among `shots` are kept as screenshots when asked."""
    client = Client()
    client.force_login(user)
    seen, wide = [], []
    for route in routes:
        path = fill(route, values)
        if not is_page(client, path):
            continue
        response = page.goto(path)
        assert response is not None and response.status < 500, (path, response)
        seen.append(route)
        found = overflow(page)
        if found:
            width = f"{found['width']} px in {found['viewport']} px"
            wide.append(f"{path}: {width}: {found['culprits']}")
        if route in shots:
            keep_screenshot(page, route)
    return seen, wide


# --- a maker's console, filled ----------------------------------------------------------

PLACES = ["Boiler room", "North stairwell", "Server room B", "Lobby", "Roof plant", "Loading dock"]


def fleet(connector, owner) -> dict:
    """Devices in every state, with names, tags, data and events for the charts."""
    devices = []
    for number in range(1, 41):
        identity = f"{20480000 + number:08d}"
        tags = [{"name": "site", "value": f"building-{number % 3 + 1}"}]
        if number % 4 == 0:
            tags.append({"name": "firmware", "value": "2.4.1-rc3"})
        name = f"{PLACES[number % len(PLACES)]} sensor {number}" if number % 5 else ""
        devices.append(services.whitelist_device(connector, identity, tags=tags, name=name))
    for device in devices[:24]:
        services.activate_device(connector, device.identity, None, "198.51.100.7")
    for device in devices[:12]:
        device.refresh_from_db()
        write_data(device, [("temperature", f"{20 + device.pk % 7}.5")], "198.51.100.7")
    for device in devices[24:28]:
        services.revoke_device(device)
    Device.objects.filter(pk__in=[d.pk for d in devices[28:31]]).update(
        status=Device.EXPIRED, activation_expires_at=timezone.now() - timedelta(days=2)
    )
    for unknown in ("99999999", "1234", "20480099"):
        try:
            services.activate_device(connector, unknown, None, "203.0.113.40")
        except DeviceError:
            pass
    run = WhitelistImport.objects.create(
        connector=connector,
        created_by=owner,
        status=WhitelistImport.FAILED,
        total=1200,
        processed=1200,
        error_count=2,
        errors=[
            {"line": 17, "identity": "2048001", "message": "identity: exactly 8 decimal digits"},
            {"line": 940, "identity": "20480003", "message": "duplicate in file"},
        ],
        finished_at=timezone.now(),
    )
    job = BulkAction.objects.create(
        connector=connector,
        created_by=owner,
        action="revoke",
        status=BulkAction.DONE,
        total=4,
        processed=4,
        changed=4,
        filters={"tag": ["site", "building-2"]},
        finished_at=timezone.now(),
    )
    # Spread the events over the last day, newest first, so the charts have a shape.
    now = timezone.now()
    events = Event.objects.filter(connector_id=connector.pk).order_by("-id")
    for step, pk in enumerate(events.values_list("pk", flat=True)):
        Event.objects.filter(pk=pk).update(created_at=now - timedelta(minutes=13 * step))
    return {"device": devices[0], "import": run, "job": job}


def secure_registrations(owner, end_user) -> Connector:
    """A connector whose devices register securely; the user owns one and pairs another."""
    ca = make_ca("Acme vendor CA")
    connector = Connector.objects.create(
        name="Acme Thermostat", owner=owner, auth_mode=Connector.CERTIFICATE
    )
    trust(connector, ca)
    user_browser = Client()
    user_browser.force_login(end_user)
    first = SecureDeviceClient(make_certificate("a1b2c3d4", issuer=ca, serial=0x5EC00001C0FFEE))
    done = register(first, user_browser, connector, "a1b2c3d4")
    first.message(done["accessToken"], done["did"], {"temperature": 21.5, "mode": "eco"})
    return connector


@pytest.fixture
def console(owner, end_user, make_connector, settings, tmp_path):
    """A maker's console with real rows behind every path parameter."""
    settings.MEDIA_ROOT = tmp_path / "media"
    type(owner).objects.filter(pk=owner.pk).update(is_staff=True, is_superuser=True)
    connector = make_connector(name="Warehouse sensors", identity_type="base10", identity_length=8)
    resource = Resource.objects.create(connector=connector, alias="temperature", format="number")
    made = fleet(connector, owner)
    authority = certificates.create_authority(connector)
    issued = certificates.issue_certificate(authority, common_name=made["device"].identity)
    anchor = certificates.add_trust_anchor(
        connector, make_ca("Factory line 7 CA").cert_pem, name="Factory line 7"
    )
    content, _ = connector_content.upload(
        connector, SimpleUploadedFile("firmware-2.4.1.bin", b"\x7fELF firmware"), actor=None
    )
    app, _ = oauth.register_app(
        owner,
        "Warehouse dashboard",
        oauth.SERVER_APP,
        ["https://dashboard.example.com/oauth/callback"],
        actor=Actor(owner, "portal"),
    )
    AccessToken.objects.create(
        user=end_user,
        application=app,
        token="layout-test-token",
        expires=timezone.now() + timedelta(hours=1),
        scope="devices:read",
    )
    secure = secure_registrations(owner, end_user)
    mine = Device.objects.get(connector=secure, owner=end_user)
    return {
        "connector": connector,
        "secure": secure,
        "values": {
            "connector_id": connector.pk,
            "device_id": made["device"].pk,
            "alias": resource.alias,
            "resource_id": resource.pk,
            "fingerprint": issued.certificate.fingerprint,
            "certificate_id": issued.certificate.pk,
            "anchor_id": anchor.pk,
            "import_id": made["import"].pk,
            "action": "reset",
            "name": content.name,
            "job_id": made["job"].pk,
            "app_id": app.pk,
        },
        "user_values": {"device_id": mine.pk, "app_id": app.pk},
    }


@SIZES
def test_every_console_page_fits_an_admins_screen(page, console, owner, live_server, size):
    sign_in(page, owner, live_server)
    page.set_viewport_size(size)
    routes = console_routes(ADMIN_NAMESPACES)
    shots = set(MAIN_PAGES.values()) - {"my/devices/", "pair/"}  # the user's, below
    seen, wide = visit_all(page, owner, routes, console["values"], shots)
    # The walk reached the pages that matter (a route that stopped answering HTML would
    # silently leave the walk otherwise).
    assert set(MAIN_PAGES.values()) <= set(seen), set(MAIN_PAGES.values()) - set(seen)
    assert len(seen) >= 25, seen
    assert wide == [], "\n".join(wide)


@SIZES
def test_pairing_and_a_users_own_pages_fit_their_screen(page, console, end_user, live_server, size):
    ca = make_ca("Acme vendor CA, second line")
    trust(console["secure"], ca)
    device = SecureDeviceClient(make_certificate("a1b2c3d5", issuer=ca, serial=0x5EC00002BEEF))
    started = device.initiate(console["secure"], "a1b2c3d5").json()["data"]
    sign_in(page, end_user, live_server)
    page.set_viewport_size(size)

    page.goto("/pair/")
    assert overflow(page) is None, overflow(page)
    keep_screenshot(page, "pair/")
    page.fill("#id_pin", started["pin"])
    page.fill("#id_serial_suffix", serial_suffix_of(device.issued))
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/pair/confirm/$"))
    assert overflow(page) is None, overflow(page)
    page.fill("#id_name", "Guest room thermostat")
    page.click("main button[type=submit]")
    expect(page).to_have_url(re.compile(r"/my/devices/$"))

    routes = console_routes(USER_NAMESPACES)
    seen, wide = visit_all(page, end_user, routes, console["user_values"], {"my/devices/"})
    assert {"my/devices/", "my/devices/<int:device_id>/", "my/apps/", "pair/"} <= set(seen)
    assert wide == [], "\n".join(wide)


def test_the_overflow_check_names_the_element_that_sticks_out(page, live_server):
    """The check can fail: a wide element on a phone is found and named."""
    page.set_viewport_size(PHONE)
    page.goto("/login/")
    assert overflow(page) is None
    page.evaluate(
        "() => { const wide = document.createElement('div'); wide.id = 'too-wide';"
        " wide.style.width = '900px'; wide.textContent = 'x';"
        " document.querySelector('main').appendChild(wide); }"
    )
    found = overflow(page)
    assert found is not None and found["width"] > found["viewport"]
    assert any("div#too-wide" in culprit for culprit in found["culprits"]), found


def test_the_overflow_check_names_a_card_that_cuts_a_wide_table_off(page, live_server):
    """A table too wide for its card, with no scrolling wrapper, is found too."""
    page.set_viewport_size(PHONE)
    page.goto("/login/")
    page.evaluate(
        "() => { const card = document.createElement('div'); card.className = 'card card-flush';"
        " const table = document.createElement('table'); table.id = 'wide-table';"
        " table.style.minWidth = '700px'; table.insertRow().insertCell().textContent = 'x';"
        " card.appendChild(table); document.querySelector('main').appendChild(card); }"
    )
    found = overflow(page)
    assert found is not None and found["width"] <= found["viewport"]
    assert any("div.card.card-flush cuts off" in culprit for culprit in found["culprits"]), found
    page.evaluate(
        "() => { const wrap = document.createElement('div'); wrap.className = 'table-wrap';"
        " const table = document.getElementById('wide-table'); table.before(wrap);"
        " wrap.appendChild(table); }"
    )
    assert overflow(page) is None
