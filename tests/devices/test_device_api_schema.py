"""The device API's OpenAPI document: served beside the management API's, for the
same readers, and naming every device path with its statuses."""

import pytest

pytestmark = pytest.mark.django_db

OPENAPI_JSON = "application/vnd.oai.openapi+json"


def test_the_device_schema_documents_every_device_path(api_client):
    response = api_client.get("/api/device/schema/", HTTP_ACCEPT=OPENAPI_JSON)
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Gatehouse device API"
    paths = schema["paths"]
    activate = paths["/c/{connector_id}/provision/activate"]["post"]
    assert {"200", "204", "409", "410", "429"} <= set(activate["responses"])
    assert "application/x-www-form-urlencoded" in activate["requestBody"]["content"]
    alias = paths["/c/{connector_id}/api:v1/stack/alias"]
    assert {"200", "204", "304", "401"} <= set(alias["get"]["responses"])
    assert {"204", "401", "413", "415"} <= set(alias["post"]["responses"])
    assert "deviceToken" in schema["components"]["securitySchemes"]
    assert set(paths["/c/{connector_id}/timestamp"]) == {"get"}
    # The management API's own document does not mix the two.
    management = api_client.get("/api/schema/", HTTP_ACCEPT=OPENAPI_JSON).json()
    assert not any("stack/alias" in path for path in management["paths"])


def test_the_device_docs_page_is_for_device_makers(api_client, client):
    assert api_client.get("/api/device/docs/").status_code == 200
    assert client.get("/api/device/schema/").status_code in (401, 403)
