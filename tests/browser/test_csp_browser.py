"""The Content-Security-Policy in Chromium: every page of the portal, the admin console and
the API docs loads and runs its scripts with no violation.

Violations are collected twice: the page's `securitypolicyviolation` events (a listener
Playwright installs before any page script) and Chromium's console errors.
"""

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from devices import services
from devices.models import Device, WhitelistImport

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.effectiveDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


class Watched:
    """A tab that remembers every CSP violation it saw."""

    def __init__(self, page):
        self.page = page
        self.console = []
        page.add_init_script(LISTENER)
        page.on("console", self._on_console)

    def _on_console(self, message):
        if message.type == "error" and "Content Security Policy" in message.text:
            self.console.append(message.text)

    def visit(self, path: str):
        response = self.page.goto(path)
        assert response is not None and response.status == 200, (path, response)
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy, (path, policy)
        assert "unsafe-inline" not in policy, (path, policy)
        return response

    def violations(self) -> list[str]:
        events = self.page.evaluate("window.__cspViolations || []")
        return events + self.console


def sign_in(page, user, live_server):
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )


@pytest.fixture
def watched(page):
    return Watched(page)


def test_the_watch_sees_an_inline_script_the_policy_blocks(watched):
    """The check below can fail: an inline script on a Gatehouse page is a violation."""
    watched.visit("/login/")
    watched.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.appendChild(s); }"
    )
    expect(watched.page.locator("body")).to_be_visible()
    watched.page.wait_for_function("window.__cspViolations.length > 0")
    assert watched.page.evaluate("window.ran === undefined")
    assert any("script-src" in line for line in watched.violations())


def test_portal_pages_run_their_scripts_without_a_csp_violation(
    watched, owner, make_connector, connector, live_server
):
    sign_in(watched.page, owner, live_server)
    page = watched.page
    cert_connector = make_connector(auth_mode="certificate", identity_type="base10")
    services.whitelist_device(connector, "00000001")
    services.activate_device(connector, "00000001", None, "192.0.2.1")
    device = Device.objects.get(identity="00000001")
    run = WhitelistImport.objects.create(
        connector=connector, created_by=owner, status=WhitelistImport.RUNNING, total=10
    )
    base = f"/connectors/{connector.pk}"

    for path in [
        "/",
        "/connectors/",
        f"{base}/",
        f"{base}/resources/",
        f"{base}/devices/",
        f"{base}/devices/new/",
        f"{base}/devices/{device.pk}/",
        f"{base}/imports/new/",
        f"/connectors/{cert_connector.pk}/certificates/",
        "/pair/",
        "/my/devices/",
    ]:
        watched.visit(path)

    # Pages whose scripts do something: the identity tester asks the server as you type,
    # the import page polls its progress, the live log polls for new events.
    watched.visit("/connectors/new/")
    page.select_option("#id_identity_type", "mac")
    page.fill("#identity-tester", "00:14:22:01:23:45")
    expect(page.locator("#identity-verdict")).to_have_attribute("data-state", "ok")
    watched.visit(f"{base}/settings/")
    page.fill("#identity-tester", "12")
    expect(page.locator("#identity-verdict")).to_have_attribute("data-state", "bad")
    watched.visit(f"{base}/imports/{run.pk}/")
    WhitelistImport.objects.filter(pk=run.pk).update(
        status=WhitelistImport.DONE, processed=10, created=10
    )
    expect(page.locator("#import-status")).to_have_attribute("data-status", "done")
    watched.visit(f"{base}/logs/")
    services.whitelist_device(connector, "00000002")
    expect(page.locator("#log-rows tr").first).to_contain_text("00000002")

    assert watched.violations() == []


def test_admin_console_pages_have_no_csp_violation(
    watched, django_user_model, connector, live_server
):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-1")
    watched.visit("/admin/login/")
    sign_in(watched.page, admin, live_server)
    device = services.whitelist_device(connector, "00000001")
    for path in [
        "/admin/",
        "/admin/devices/device/",
        f"/admin/devices/device/{device.pk}/change/",
        "/admin/connectors/connector/",
        f"/admin/connectors/connector/{connector.pk}/change/",
        "/admin/auth/user/add/",
        "/admin/audit/event/",
    ]:
        watched.visit(path)
    watched.page.click("#toggle-nav-sidebar")
    assert watched.violations() == []


def test_the_api_docs_render_under_the_policy(watched, owner, live_server):
    sign_in(watched.page, owner, live_server)  # the docs are for device makers
    watched.visit("/api/docs/")
    expect(watched.page.locator(".opblock").first).to_be_visible()
    expect(watched.page.locator(".swagger-ui .info .title")).to_contain_text("Gatehouse")
    assert watched.violations() == []
