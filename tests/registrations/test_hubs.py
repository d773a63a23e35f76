"""A hub creates end nodes, lists, reads and deletes them, and sends messages for them
over HTTPS (POST /v1.1/devices, GET /v1.1/devices[/<did>], DELETE /v1.1/devices/<did>,
POST /v1.1/messages with sdid = the end node)."""

import pytest

from audit.models import Event
from devices.models import Device
from registrations import services
from registrations.models import HubPolicy, Message, SecureDevice
from tests.support.secure_devices import SecureDeviceClient

pytestmark = pytest.mark.django_db

JSON_UTF8 = "application/json; charset=utf-8"


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == JSON_UTF8
    body = response.json()
    assert body == {"error": {"code": status, "message": body["error"]["message"]}}
    return body["error"]["message"]


def test_a_hub_creates_an_end_node_of_its_own_type_for_its_owner(hub, hub_type, alice):
    response = hub.create_node("Porch light")
    assert response.status_code == 200 and response["Content-Type"] == JSON_UTF8
    data = response.json()["data"]
    assert data == {
        "id": data["id"],
        "dtid": hub_type.pk,
        "name": "Porch light",
        "manifestVersion": 1,
        "manifestVersionPolicy": "LATEST",
        "needProviderAuth": False,
        "properties": {},
        "createdOn": data["createdOn"],
        "uid": services.public_user_id(alice),
    }
    node = Device.objects.get(secure__did=data["id"])
    assert node.owner == alice and node.status == Device.PROVISIONED
    # Its identity is its public id; it has no certificate and no token of its own.
    assert node.identity == data["id"]
    assert node.secure.token_hash is None and node.secure.is_end_node
    assert node.secure.hub.secure.did == hub.did
    assert Event.objects.filter(
        kind="create", identity=node.identity, reason__contains=f"by hub {hub.did} for alice"
    ).exists()


def test_a_hub_sends_messages_for_its_end_node(hub):
    node = hub.create_node().json()["data"]["id"]
    response = hub.send(node, {"on": True})
    assert response.status_code == 200
    message = Message.objects.get(mid=response.json()["data"]["mid"])
    assert message.device.secure.did == node and message.data == {"on": True}
    # The node's own allowance is counted.
    assert response["X-Rate-Limit-Remaining"] == "99/999"
    assert Event.objects.filter(
        kind="message", reason__contains=f"via rest from hub {hub.did}"
    ).exists()
    # The hub still sends for itself.
    assert hub.send(hub.did, {"self": 1}).status_code == 200
    assert hub.send(None, {"self": 2}).status_code == 200
    assert Message.objects.filter(device__secure__did=hub.did).count() == 2


def test_a_hub_reads_its_end_nodes_latest_messages(hub):
    lamp = hub.create_node("Lamp").json()["data"]["id"]
    door = hub.create_node("Door").json()["data"]["id"]
    hub.send(lamp, {"lamp": 1})
    hub.send(door, {"door": 1})
    hub.send(hub.did, {"hub": 1})
    response = hub.call("GET", f"/v1.1/messages/last?sdids={lamp},{door}&count=5")
    assert response.status_code == 200
    assert [(m["sdid"], m["data"]) for m in response.json()["data"]] == [
        (door, {"door": 1}),
        (lamp, {"lamp": 1}),
    ]


def test_a_hub_creates_an_end_node_of_a_type_that_trusts_its_type(hub, sensor_type):
    response = hub.create_node("Cellar sensor", dtid=sensor_type.pk, vendorDeviceId="c0ffee01")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["dtid"] == sensor_type.pk
    node = Device.objects.get(secure__did=data["id"])
    assert node.connector == sensor_type and node.identity == "c0ffee01"
    assert hub.send(data["id"], {"t": 12.5}).status_code == 200


def test_a_type_that_does_not_trust_the_hub_or_does_not_exist_is_refused_alike(
    hub, vendor, sensor_type
):
    sensor_type.hub_policy.trusted_hub_types.clear()
    untrusting = error_of(hub.create_node(dtid=sensor_type.pk), 403)
    unknown = error_of(hub.create_node(dtid="dt" + "0" * 32), 403)
    assert untrusting == unknown
    assert not SecureDevice.objects.filter(hub__isnull=False).exists()


def test_a_device_whose_type_is_no_hub_creates_no_end_nodes(hub, hub_type):
    node = hub.create_node().json()["data"]["id"]
    HubPolicy.objects.filter(connector=hub_type).update(acts_as_hub=False)
    assert "hub" in error_of(hub.create_node("Another"), 403)
    error_of(hub.call("GET", "/v1.1/devices"), 403)
    # It no longer speaks for the node it created, but still for itself.
    error_of(hub.send(node, {"on": True}), 403)
    error_of(hub.call("GET", f"/v1.1/devices/{node}"), 403)
    assert hub.send(hub.did, {"self": 1}).status_code == 200
    assert Device.objects.filter(secure__hub__isnull=False).count() == 1


def test_the_hub_lists_and_reads_its_end_nodes(hub):
    made = [hub.create_node(name).json()["data"] for name in ("Lamp", "Door", "Window")]
    listed = hub.call("GET", "/v1.1/devices")
    assert listed.status_code == 200
    assert listed.json() == {
        "data": {"devices": made},
        "total": 3,
        "offset": 0,
        "count": 3,
    }
    page = hub.call("GET", "/v1.1/devices?offset=1&count=1").json()
    assert page == {"data": {"devices": [made[1]]}, "total": 3, "offset": 1, "count": 1}
    assert hub.call("GET", f"/v1.1/devices/{made[2]['id']}").json() == {"data": made[2]}
    # And itself, as before.
    assert hub.call("GET", f"/v1.1/devices/{hub.did}").json()["data"]["id"] == hub.did


@pytest.mark.parametrize("query", ["count=0", "count=101", "offset=-1", "count=x"])
def test_a_bad_listing_query_is_400(hub, query):
    error_of(hub.call("GET", f"/v1.1/devices?{query}"), 400)


def test_the_hub_deletes_an_end_node(hub):
    node = hub.create_node().json()["data"]
    hub.send(node["id"], {"on": True})
    response = hub.call("DELETE", f"/v1.1/devices/{node['id']}")
    assert response.status_code == 200 and response.json() == {"data": node}
    assert not Device.objects.filter(identity=node["id"]).exists()
    assert not Message.objects.exists()
    assert Event.objects.filter(kind="delete", identity=node["id"], reason=f"hub {hub.did}")
    for method in ("GET", "DELETE"):
        error_of(hub.call(method, f"/v1.1/devices/{node['id']}"), 403)
    error_of(hub.send(node["id"], {"on": True}), 403)


def test_a_hub_cannot_delete_itself_through_the_end_node_path(hub):
    error_of(hub.call("DELETE", f"/v1.1/devices/{hub.did}"), 403)
    assert Device.objects.filter(secure__did=hub.did, status=Device.PROVISIONED).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 7},
        {"name": "Lamp", "uid": 7},
        {"name": "Lamp", "dtid": ["dt"]},
        {"name": "Lamp", "vendorDeviceId": "has space"},
        {"name": "Lamp", "vendorDeviceId": ""},
        {"name": "La\u0000mp"},
    ],
)
def test_a_bad_end_node_body_is_400_and_creates_nothing(hub, body):
    error_of(hub.call("POST", "/v1.1/devices", body), 400)
    assert Device.objects.count() == 1


def test_an_identity_the_type_already_has_is_409(hub):
    assert hub.create_node(vendorDeviceId="lamp-1").status_code == 200
    error_of(hub.create_node(vendorDeviceId="lamp-1"), 409)
    # Nor does a hub squat the hub's own identity.
    error_of(hub.create_node(vendorDeviceId="a1b2c3d4"), 409)
    assert Device.objects.count() == 2


def test_a_hub_has_at_most_its_allowance_of_end_nodes(hub, settings):
    settings.HUB_MAX_END_NODES = 2
    for name in ("Lamp", "Door"):
        assert hub.create_node(name).status_code == 200
    assert "most end nodes (2)" in error_of(hub.create_node("Window"), 409)
    assert Device.objects.count() == 3


def test_creating_end_nodes_too_fast_is_429(hub, settings):
    settings.RATE_LIMIT_END_NODES = "2/3600"
    for name in ("Lamp", "Door"):
        assert hub.create_node(name).status_code == 200
    response = hub.create_node("Window")
    error_of(response, 429)
    assert int(response["Retry-After"]) > 0
    # Deleting a node gives no creation back.
    first = hub.call("GET", "/v1.1/devices").json()["data"]["devices"][0]["id"]
    assert hub.call("DELETE", f"/v1.1/devices/{first}").status_code == 200
    error_of(hub.create_node("Window"), 429)


def test_end_node_calls_need_the_token_and_the_hubs_certificate(hub):
    response = hub.call("POST", "/v1.1/devices", {"name": "Lamp"}, HTTP_AUTHORIZATION="")
    error_of(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="device"'
    error_of(hub.call("GET", "/v1.1/devices", HTTP_AUTHORIZATION="bearer forged"), 401)
    without_certificate = SecureDeviceClient(None)
    headers = {"HTTP_AUTHORIZATION": f"bearer {hub.token}"}
    error_of(without_certificate.send_json("POST", "/v1.1/devices", {"name": "L"}, **headers), 403)
    assert Device.objects.count() == 1


def test_a_device_that_is_no_hub_speaks_for_no_other_device(hub, other_hub, hub_type):
    """A plain secure device (its type no hub type) naming another device is refused."""
    HubPolicy.objects.filter(connector=hub_type).update(acts_as_hub=False)
    error_of(hub.send(other_hub.did, {"x": 1}), 403)
    error_of(hub.call("GET", f"/v1.1/devices/{other_hub.did}"), 403)
    assert not Message.objects.exists()


def test_the_end_node_path_offers_its_methods_only(hub):
    response = hub.call("PUT", "/v1.1/devices", {"name": "Lamp"})
    error_of(response, 405)
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"


def test_a_hub_cannot_act_for_another_hubs_end_node(hub, other_hub):
    node = other_hub.create_node("Bob's sensor").json()["data"]["id"]
    error_of(hub.send(node, {"x": 1}), 403)
    error_of(hub.call("GET", f"/v1.1/devices/{node}"), 403)
    error_of(hub.call("GET", f"/v1.1/messages/last?sdids={node}"), 403)
    error_of(hub.call("DELETE", f"/v1.1/devices/{node}"), 403)
    assert Device.objects.filter(secure__did=node).exists() and not Message.objects.exists()
    # Its own hub still speaks for it.
    assert other_hub.send(node, {"x": 2}).status_code == 200
