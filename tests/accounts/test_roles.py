"""Roles: device makers get the console and the management API; plain users pair
devices and see their own, nothing else.

The walks enumerate routes from the URL configuration itself, so a route added later
is walked too: a management API view is any DRF view, a console page is any view in
the console's namespaces. A route with a path parameter the walk cannot fill fails
the test until a value is added to `path_values`.
"""

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import get_resolver
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.views import APIView

from accounts.models import ApiToken
from accounts.permissions import REFUSAL, IsDeviceMaker
from certificates import services as certificates
from connectors import content as connector_content
from connectors.models import Connector, new_connector_id
from device_api.base import DeviceAPIView
from devices.models import BulkAction, Device, WhitelistImport
from registrations.artik.api import ArtikView
from tests.support import urls
from tests.support.tls import make_ca

pytestmark = pytest.mark.django_db

CONSOLE_NAMESPACES = {"connectors", "devices", "certificates"}
DEVICE_HOST_URLCONF = "device_api.urls"
# Models whose rows a refused request must leave exactly as they were. API tokens
# note when they were last used even when the request is then refused.
APPS_WITH_STATE = ["accounts", "auth", "connectors", "devices", "certificates", "registrations"]
NOT_STATE = {"last_used_at", "last_login"}
NEW_CONNECTOR_FORM = {
    "name": "Mine",
    "identity_type": "base10",
    "identity_mac_style": "colon",
    "auth_mode": "token",
    "window_amount": "24",
    "window_unit": "hours",
}


def management_api(urlconf=None) -> list[tuple[str, list[str], type]]:
    """Every DRF view (the management API, Foundry included): route, methods, view class."""
    routes = []
    for route, _, entry in urls.walk(get_resolver(urlconf).url_patterns):
        view_class = getattr(entry.callback, "cls", None)
        if not (isinstance(view_class, type) and issubclass(view_class, APIView)):
            continue
        if issubclass(view_class, SpectacularAPIView | SpectacularSwaggerView):
            continue  # the public OpenAPI description of the API, not the API
        if issubclass(view_class, ArtikView):
            continue  # the ARTIK device API: devices call it with certificates and tokens
        if issubclass(view_class, DeviceAPIView):
            continue  # the device API: devices present their own credentials
        actions = getattr(entry.callback, "actions", None)
        if actions:
            # DRF answers HEAD wherever there is a GET; the GET is walked.
            methods = [method for method in actions if method != "head"]
        else:
            methods = [
                method
                for method in ("get", "post", "put", "patch", "delete")
                if hasattr(view_class, method) and method in view_class.http_method_names
            ]
        routes.append((route, methods, view_class))
    return routes


def console_pages() -> list[str]:
    return [
        route
        for route, namespace, _ in urls.walk(get_resolver().url_patterns)
        if namespace in CONSOLE_NAMESPACES
    ]


def fill(route: str, values: dict) -> str:
    return urls.fill(route, values, "path_values")


def snapshot() -> dict:
    """Every row of every model that holds Gatehouse's state, but last-use stamps."""
    state = {}
    for app in APPS_WITH_STATE:
        for model in apps.get_app_config(app).get_models():
            fields = [f.attname for f in model._meta.concrete_fields if f.name not in NOT_STATE]
            state[model._meta.label] = sorted(
                model.objects.values_list(*fields), key=lambda row: str(row)
            )
    return state


@pytest.fixture
def estate(make_connector, owner, whitelist, settings, tmp_path):
    """One of everything in a maker's connector, so every path parameter names a real row."""
    connector = make_connector(identity_type="base10", identity_length=8)
    resource = connector.resources.create(alias="myalias", format="number")
    device = whitelist(connector, "00000001")
    authority = certificates.create_authority(connector)
    issued = certificates.issue_certificate(authority, common_name="00000002")
    anchor = certificates.add_trust_anchor(connector, make_ca("Vendor CA").cert_pem)
    run = WhitelistImport.objects.create(
        connector=connector, created_by=owner, total=1, status=WhitelistImport.DONE
    )
    token, _ = ApiToken.issue(owner, "laptop")
    job = BulkAction.objects.create(
        connector=connector, created_by=owner, action="revoke", status=BulkAction.DONE
    )
    settings.MEDIA_ROOT = tmp_path / "media"
    content, _ = connector_content.upload(
        connector, SimpleUploadedFile("fw.bin", b"firmware"), actor=None
    )
    return {
        "connector": connector,
        "values": {
            "connector_id": connector.pk,
            "identity": device.identity,
            "device_id": device.pk,
            "alias": resource.alias,
            "resource_id": resource.pk,
            "fingerprint": issued.certificate.fingerprint,
            "certificate_id": issued.certificate.pk,
            "anchor_id": anchor.pk,
            "import_id": run.pk,
            "pk": token.pk,
            "action": "reset",
            "name": content.name,
            "job_id": job.pk,
        },
    }


def session_api(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_walks_find_the_management_api_and_the_console():
    api = {route: methods for route, methods, _ in management_api()}
    assert "api/v1/connectors/" in api
    assert "api/v1/tokens/" in api
    assert "c/<str:connector_id>/foundry/certificates/generate" in api
    assert "api/v1/connectors/<str:connector_id>/ca/" in api
    assert len(api) >= 25
    assert {route for route, _, _ in management_api(DEVICE_HOST_URLCONF)} >= {
        "foundry/certificates/generate",
        "foundry/certificates/provision",
        "foundry/certificates/revoke",
    }
    pages = console_pages()
    assert {"connectors/", "connectors/new/"} <= set(pages)
    assert "connectors/<str:connector_id>/certificates/ca/create" in pages
    assert len(pages) >= 25


def test_every_management_api_view_names_the_maker_permission_itself():
    """Beyond the settings default, so changing the default opens nothing."""
    for urlconf in (None, DEVICE_HOST_URLCONF):
        for route, _, view_class in management_api(urlconf):
            declared = [
                vars(klass)["permission_classes"]
                for klass in view_class.__mro__
                if klass is not APIView and "permission_classes" in vars(klass)
            ]
            assert declared and IsDeviceMaker in declared[0], route


def refused(response) -> bool:
    return response.status_code == 403 and REFUSAL in response.content.decode()


@pytest.mark.parametrize("caller", ["token", "session"])
def test_plain_users_are_refused_by_every_management_api_route_and_change_nothing(
    estate, end_user, end_user_client, caller
):
    client = end_user_client if caller == "token" else session_api(end_user)
    missing = {**estate["values"], "connector_id": new_connector_id()}
    before = snapshot()
    for route, methods, _ in management_api():
        for values in (estate["values"], missing):
            path = fill(route, values)
            for method in methods:
                response = getattr(client, method)(
                    path, {"name": "mine"}, content_type="application/json"
                )
                assert refused(response), (method, path, response.status_code)
                assert snapshot() == before, (method, path)


def test_plain_users_are_refused_by_foundry_on_the_device_host(estate, end_user):
    connector = estate["connector"]
    _, token = ApiToken.issue(end_user, "app")
    client = Client(HTTP_HOST=connector.device_host, HTTP_AUTHORIZATION=f"Bearer {token}")
    before = snapshot()
    routes = management_api(DEVICE_HOST_URLCONF)
    assert routes
    for route, methods, _ in routes:
        for method in methods:
            response = getattr(client, method)(
                fill(route, estate["values"]),
                {"certId": "x", "deviceId": "00000001", "topics": ["1/+/1"]},
                content_type="application/json",
            )
            assert refused(response), (method, route, response.status_code)
    assert snapshot() == before


def test_anonymous_callers_of_the_management_api_must_authenticate(estate):
    client = Client()
    for route, methods, _ in management_api():
        for method in methods:
            response = getattr(client, method)(fill(route, estate["values"]))
            assert response.status_code == 401, (method, route, response.status_code)


def test_makers_pass_the_role_check_on_every_management_api_route(estate, api_client, owner):
    """Reads of the maker's own rows answer 200; writes get past the role check to the
    input and the connector lookup (a connector that does not exist is a 404)."""
    missing = {**estate["values"], "connector_id": new_connector_id(), "pk": 10**9}
    session = session_api(owner)
    for route, methods, _ in management_api():
        for method in methods:
            if method == "get":
                response = api_client.get(fill(route, estate["values"]))
                assert response.status_code == 200, (route, response.status_code)
                # With a session too (Foundry's GET generate alone wants a token: 405).
                response = session.get(fill(route, estate["values"]))
                assert response.status_code in (200, 405), (route, response.status_code)
                assert not refused(response), route
            else:
                path = fill(route, missing)
                response = getattr(api_client, method)(path, {})
                # Past the role check: refused for what was sent or where, never for who.
                assert response.status_code in (201, 400, 404), (method, path, response.status_code)


def test_makers_still_see_only_connectors_they_own_or_manage(estate, other_api_client):
    connector = estate["connector"]
    listing = other_api_client.get("/api/v1/connectors/")
    assert listing.status_code == 200
    assert listing.json()["results"] == []
    assert other_api_client.get(f"/api/v1/connectors/{connector.pk}/").status_code == 404
    response = other_api_client.patch(f"/api/v1/connectors/{connector.pk}/", {"name": "taken"})
    assert response.status_code == 404
    connector.refresh_from_db()
    assert connector.name != "taken"


def test_a_plain_user_cannot_create_a_connector_or_a_token_through_the_api(end_user_client):
    created = end_user_client.post(
        "/api/v1/connectors/",
        {"name": "Mine", "identity_format": {"type": "base10"}, "auth_mode": "token"},
    )
    assert created.status_code == 403
    assert created.json() == {"detail": REFUSAL}
    assert end_user_client.post("/api/v1/tokens/", {"name": "more"}).status_code == 403
    assert not Connector.objects.exists()
    assert ApiToken.objects.count() == 1  # the one the client signs with


def test_a_maker_creates_a_connector_and_a_token_through_the_api(api_client, owner):
    created = api_client.post(
        "/api/v1/connectors/",
        {"name": "Mine", "identity_format": {"type": "base10"}, "auth_mode": "token"},
    )
    assert created.status_code == 201
    assert Connector.objects.get().owner == owner
    assert api_client.post("/api/v1/tokens/", {"name": "more"}).status_code == 201


def test_plain_users_get_403_on_every_console_page_and_change_nothing(estate, end_user_browser):
    missing = {**estate["values"], "connector_id": new_connector_id()}
    before = snapshot()
    for route in console_pages():
        for values in (estate["values"], missing):
            path = fill(route, values)
            for method in ("get", "post"):
                response = getattr(end_user_browser, method)(path, NEW_CONNECTOR_FORM)
                assert refused(response), (method, path, response.status_code)
                # The refusal is a portal page that leads back to what is theirs.
                assert b'href="/my/devices/"' in response.content
                assert snapshot() == before, (method, path)


def test_anonymous_visitors_of_the_console_are_sent_to_sign_in(estate):
    client = Client()
    for route in console_pages():
        path = fill(route, estate["values"])
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/"), path


def test_makers_open_every_console_page(estate, owner):
    browser = Client()
    browser.force_login(owner)
    for route in console_pages():
        path = fill(route, estate["values"])
        response = browser.get(path)
        # 405: a page that only takes a form's POST; 400: the identity tester asked nothing.
        assert response.status_code in (200, 302, 400, 405), (path, response.status_code)


def test_another_makers_connector_stays_a_404_in_the_console(estate, other_user):
    browser = Client()
    browser.force_login(other_user)
    connector = estate["connector"]
    assert browser.get(f"/connectors/{connector.pk}/devices/").status_code == 404
    assert browser.get(f"/connectors/{connector.pk}/certificates/").status_code == 404


def test_a_plain_user_cannot_create_a_connector_in_the_console(end_user_browser):
    assert end_user_browser.get("/connectors/new/").status_code == 403
    response = end_user_browser.post("/connectors/new/", NEW_CONNECTOR_FORM)
    assert response.status_code == 403
    assert not Connector.objects.exists()


def test_a_plain_user_lands_on_their_devices_and_sees_no_console(end_user):
    browser = Client()
    signed_in = browser.post(
        "/login/", {"username": "enduser", "password": "end-pass-123"}, follow=True
    )
    assert signed_in.redirect_chain[-1][0] == "/my/devices/"
    page = signed_in.content.decode()
    assert "My devices" in page
    assert 'href="/pair/"' in page
    for console in ('href="/connectors/"', "Admit devices to your cloud", "+ New connector"):
        assert console not in page
    assert 'href="/connectors/"' not in browser.get("/pair/").content.decode()


def test_a_maker_lands_on_the_console_with_its_link_in_the_nav(owner):
    browser = Client()
    home = browser.post("/login/", {"username": "owner", "password": "owner-pass-123"}, follow=True)
    assert home.redirect_chain[-1][0] == "/"
    page = home.content.decode()
    assert 'href="/connectors/"' in page
    assert "Admit devices to your cloud" in page
    assert "+ New connector" in page
    assert 'href="/my/devices/"' in page


def test_superusers_are_device_makers_without_a_grant(admin_client):
    assert admin_client.get("/connectors/new/").status_code == 200
    assert admin_client.get("/api/v1/connectors/").status_code == 200


def test_devices_of_plain_users_stay_theirs_to_see(estate, end_user_browser, end_user):
    device = Device.objects.get()
    Device.objects.filter(pk=device.pk).update(owner=end_user)
    assert end_user_browser.get("/my/devices/").status_code == 200
    assert end_user_browser.get(f"/my/devices/{device.pk}/").status_code == 200
    assert end_user_browser.get("/pair/").status_code == 200
