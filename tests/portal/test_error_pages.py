"""The portal's error pages: branded, with ways on, for people; the API keeps its JSON."""

import pytest
from django.template.loader import render_to_string

from connectors.models import Connector, Resource
from devices.models import DataPoint
from tests.support.clients import DeviceClient

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_a_branded_404_with_ways_on(owner_client):
    response = owner_client.get("/no/such/page/")
    body = response.content.decode()
    assert response.status_code == 404
    assert 'class="error-page"' in body
    assert "There is nothing at this address" in body
    assert 'href="/api/docs/"' in body
    assert "gatehouse/panels.css" in body


def test_an_unknown_api_path_still_answers_json(owner_client):
    response = owner_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_plain_user_on_a_makers_page_gets_a_branded_403(end_user_browser):
    response = end_user_browser.get("/connectors/")
    body = response.content.decode()
    assert response.status_code == 403
    assert 'class="error-page"' in body
    assert "Go to your devices" in body


@pytest.mark.parametrize("name", ["500.html", "503.html", "429.html"])
def test_error_pages_render_without_a_request(name):
    # 500 and 503 are rendered when the database may be gone: no context at all.
    body = render_to_string(name)
    assert 'class="error-page"' in body
    assert name[:3] in body


def test_device_makers_see_the_api_docs_in_the_navigation(owner_client, end_user_browser):
    nav = owner_client.get("/connectors/").content.decode()
    assert 'href="/api/docs/"' in nav[: nav.index("</nav>")]
    own = end_user_browser.get("/my/devices/").content.decode()
    assert "API docs" not in own[: own.index("</nav>")]


def settings_data(**overrides) -> dict:
    data = {
        "name": "Thermostats",
        "auth_mode": "token",
        "identity_type": "base10",
        "identity_length": "8",
        "identity_mac_style": "colon",
        "window_amount": "24",
        "window_unit": "hours",
        "first-alias": "temperature",
        "first-format": "number",
    }
    data.update(overrides)
    return data


def test_a_new_connector_defines_its_first_alias_and_its_sample_write_keeps_the_value(
    owner_client, whitelist
):
    created = owner_client.post("/connectors/new/", settings_data())
    assert created.status_code == 302
    connector = Connector.objects.get()
    assert Resource.objects.get(connector=connector).alias == "temperature"
    page = owner_client.get(created["Location"]).content.decode()
    assert "-d &#x27;temperature=50&#x27;" in page
    assert "logged, not kept" not in page
    # The sample works as shown: activate, then write to that alias; the value is kept.
    whitelist(connector, "00000001")
    device = DeviceClient(connector)
    token = device.activate("00000001").content.decode()
    assert device.write("temperature=50", f"Token {token}").status_code == 204
    assert DataPoint.objects.get().value == "50"


def test_a_bad_first_alias_is_refused_next_to_its_field_and_creates_nothing(owner_client):
    response = owner_client.post("/connectors/new/", settings_data(**{"first-alias": "no spaces"}))
    assert response.status_code == 200
    assert b'id="id_first-alias_error"' in response.content
    assert not Connector.objects.exists()


def test_without_an_alias_the_sample_write_says_the_value_is_not_kept(owner_client):
    created = owner_client.post("/connectors/new/", settings_data(**{"first-alias": ""}))
    page = owner_client.get(created["Location"]).content.decode()
    assert not Resource.objects.exists()
    assert "logged, not kept, until you define an alias" in page
