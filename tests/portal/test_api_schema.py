"""The management API answers as its OpenAPI schema says: successes and refusals alike.

Each response here is checked against the schema served at /api/schema/ for its
operation and status code, the way API clients (and schemathesis in CI) read it.
"""

import jsonschema
import pytest
from rest_framework.test import APIClient

from tests.support.clients import bearer_client

API = "/api/v1"


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _json_schema(node):
    """OpenAPI 3.0's `nullable` spelled as JSON Schema's null type."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable"):
        converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


def assert_documented(schema, path, method, response):
    """`response` has a documented status code, content type and body for path + method."""
    documented = schema["paths"][path][method]["responses"]
    code = str(response.status_code)
    assert code in documented, f"{method.upper()} {path}: {code} is not documented"
    content = documented[code].get("content")
    if content is None:
        return
    media_type = response["Content-Type"].split(";")[0]
    assert media_type in content, f"{code} as {media_type}, documented {list(content)}"
    body_schema = {
        **_json_schema(content[media_type]["schema"]),
        "components": _json_schema(schema["components"]),
    }
    jsonschema.validate(response.json(), body_schema)


def test_a_whitelisted_device_is_as_documented_before_it_has_an_owner(
    schema, api_client, connector
):
    created = api_client.post(f"{API}/connectors/{connector.pk}/devices/", {"identity": "00000001"})
    assert created.status_code == 201
    # Not yet provisioned nor paired: no auth mode, no owner.
    assert created.json()["auth_mode"] == "" and created.json()["owner"] is None
    assert_documented(schema, "/api/v1/connectors/{connector_id}/devices/", "post", created)
    shown = api_client.get(f"{API}/connectors/{connector.pk}/devices/00000001/")
    assert_documented(schema, "/api/v1/connectors/{connector_id}/devices/{identity}/", "get", shown)


def test_refusals_are_documented_with_their_bodies(schema, api_client, other_user, connector):
    assert_documented(
        schema, "/api/v1/connectors/", "post", api_client.post(f"{API}/connectors/", {})
    )
    assert_documented(
        schema, "/api/v1/connectors/", "get", api_client.get(f"{API}/connectors/?page_size=x")
    )
    assert_documented(schema, "/api/v1/connectors/", "get", APIClient().get(f"{API}/connectors/"))
    # Another device maker's view of this connector: it does not exist for them.
    stranger = bearer_client(other_user)
    hidden = stranger.get(f"{API}/connectors/{connector.pk}/")
    assert hidden.status_code == 404
    assert_documented(schema, "/api/v1/connectors/{connector_id}/", "get", hidden)
    api_client.post(f"{API}/connectors/{connector.pk}/devices/", {"identity": "00000001"})
    again = api_client.post(f"{API}/connectors/{connector.pk}/devices/", {"identity": "00000001"})
    assert again.status_code == 409
    assert_documented(schema, "/api/v1/connectors/{connector_id}/devices/", "post", again)
    foundry = api_client.post("/c/dt0/foundry/certificates/provision", {}, format="json")
    assert foundry.json()["error"]["code"] == foundry.status_code == 404
    assert_documented(schema, "/c/{connector_id}/foundry/certificates/provision", "post", foundry)


def test_an_unknown_management_api_path_is_a_json_404_and_a_portal_one_a_page(
    schema, api_client, connector
):
    # <int:anchor_id> does not match: Django's resolver answers, not a view.
    response = api_client.get(f"{API}/connectors/{connector.pk}/trust-anchors/x/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    path = "/api/v1/connectors/{connector_id}/trust-anchors/{anchor_id}/"
    assert_documented(schema, path, "get", response)
    page = api_client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "since, status",
    [
        # PostgreSQL refuses a UTC offset past 15:59; ISO 8601 allows up to 23:59.
        ("1266-02-07T07:44:03+23:25", 200),
        ("2024-01-01T00:00:00-23:59", 200),
        # Before year 1 once in UTC.
        ("0001-01-01T00:00:00+01:00", 400),
    ],
)
def test_any_iso_offset_in_since_is_answered_not_a_500(api_client, connector, since, status):
    api_client.post(f"{API}/connectors/{connector.pk}/devices/", {"identity": "00000001"})
    for path in ("events/", "devices/00000001/data/", "devices/00000001/messages/"):
        response = api_client.get(f"{API}/connectors/{connector.pk}/{path}", {"since": since})
        assert response.status_code == status, (path, response.content)


def test_free_text_query_parameters_document_the_nul_gatehouse_refuses(schema, api_client):
    """A NUL in a query string is a 400 before any view runs; the schema says so."""
    events = schema["paths"]["/api/v1/connectors/{connector_id}/events/"]["get"]
    by_name = {parameter["name"]: parameter["schema"] for parameter in events["parameters"]}
    for name in ("identity", "cursor"):
        pattern = by_name[name]["pattern"]
        assert not jsonschema.Draft7Validator({"pattern": pattern}).is_valid("a\x00b"), name
        assert jsonschema.Draft7Validator({"pattern": pattern}).is_valid("ab"), name
    # since names its own forms (date-time or unix seconds), which hold no NUL either.
    assert "pattern" not in by_name["kind"]
    response = api_client.get(f"{API}/connectors/dt0/events/?cursor=a%00")
    assert response.status_code == 400


def test_foundry_bodies_are_documented_as_json_and_forms_still_work(schema, api_client, connector):
    """A form cannot carry the schema's types; Foundry clients sending one still succeed."""
    for path in (
        "/api/v1/connectors/{connector_id}/certificates/generate",
        "/c/{connector_id}/foundry/certificates/generate",
        "/c/{connector_id}/foundry/certificates/provision",
    ):
        assert list(schema["paths"][path]["post"]["requestBody"]["content"]) == [
            "application/json"
        ], path
    response = api_client.post(
        f"/c/{connector.pk}/foundry/certificates/provision",
        "certId=nope",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "certId" in response.json()["error"]["message"]
