"""The management API refuses what its schema does not allow, as schemathesis expects.

DRF reads input leniently (1 as true, a number as text, an empty query parameter as
none at all); each case here was accepted before and is a 400 that changes nothing now.
"""

import pytest

from accounts.models import ApiToken
from connectors.models import Connector
from devices.models import Device

pytestmark = pytest.mark.django_db

API = "/api/v1"


@pytest.mark.parametrize("value", [1, 0, "true", "1", "yes", None])
def test_a_boolean_is_true_or_false_only(api_client, connector, value):
    url = f"{API}/connectors/{connector.pk}/"
    response = api_client.patch(url, {"self_registration": value}, format="json")
    assert response.status_code == 400, response.content
    assert "self_registration" in response.json()
    connector.refresh_from_db()
    assert connector.self_registration is False
    ok = api_client.patch(url, {"self_registration": True}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["self_registration"] is True


@pytest.mark.parametrize("value", [0, 12.5, True, ["a"], {"a": 1}])
def test_a_text_field_refuses_anything_but_a_string(api_client, connector, value):
    before = ApiToken.objects.count()
    response = api_client.post(f"{API}/tokens/", {"name": value}, format="json")
    assert response.status_code == 400, response.content
    assert "name" in response.json()
    assert ApiToken.objects.count() == before
    created = api_client.post(f"{API}/connectors/", {"name": value}, format="json")
    assert created.status_code == 400, created.content
    assert Connector.objects.count() == 1


def test_a_form_body_is_refused_where_the_api_speaks_json(api_client, connector):
    response = api_client.post(
        f"{API}/connectors/{connector.pk}/devices/",
        "identity=00000001&tags=name",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert not Device.objects.exists()


@pytest.mark.parametrize("tag", [{"name": "site"}, {"value": "lab"}, {}])
def test_a_tag_needs_a_name_and_a_value_on_create_and_on_patch(api_client, connector, tag):
    devices = f"{API}/connectors/{connector.pk}/devices/"
    response = api_client.post(devices, {"identity": "00000001", "tags": [tag]}, format="json")
    assert response.status_code == 400, response.content
    assert not Device.objects.exists()
    created = api_client.post(
        devices, {"identity": "00000001", "tags": [{"name": "site", "value": "a"}]}, format="json"
    )
    assert created.status_code == 201, created.content
    patched = api_client.patch(f"{devices}00000001/", {"tags": [tag]}, format="json")
    assert patched.status_code == 400, patched.content
    assert Device.objects.get().tags == [{"name": "site", "value": "a"}]


@pytest.mark.parametrize("since", ["2026-01-01", "", "2026-01-01 00:00"])
def test_since_is_a_date_time_or_unix_seconds(api_client, connector, since):
    events = f"{API}/connectors/{connector.pk}/events/"
    response = api_client.get(events, {"since": since})
    assert response.status_code == 400, response.content
    assert "since" in response.json()
    for good in ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "1767225600"):
        assert api_client.get(events, {"since": good}).status_code == 200, good


@pytest.mark.parametrize("query", ["tag=", "search=", "status="])
def test_an_empty_filter_is_refused_not_ignored(api_client, connector, query):
    response = api_client.get(f"{API}/connectors/{connector.pk}/devices/?{query}")
    assert response.status_code == 400, response.content
    assert query.rstrip("=") in response.json()


def test_a_foundry_body_that_is_not_an_object_is_refused(api_client, connector):
    response = api_client.post(
        f"{API}/connectors/{connector.pk}/certificates/generate", [None, None], format="json"
    )
    assert response.status_code == 400, response.content
    assert "error" in response.json()
