"""A hub's owner shares it with other accounts under My devices: the hub then creates
and speaks for their end nodes too, each user sees only their own, and the WebSocket
carries the hub's messages for the nodes of different users."""

import pytest
from django.urls import reverse

from audit.models import Event
from devices.models import Device
from registrations import services
from registrations.models import HubMember, Message
from tests.registrations.test_websocket import DeviceSocket, register_frame, run

pytestmark = pytest.mark.django_db(transaction=True)


def hub_device(hub) -> Device:
    return Device.objects.get(secure__did=hub.did)


def share(browser, hub, **fields):
    url = reverse("registrations:my-device-sharing", args=[hub_device(hub).pk])
    return browser.post(url, fields, follow=True)


@pytest.fixture
def shared(hub, alice_browser, bob):
    """Alice's hub, shared with Bob, with one end node for each of them."""
    answer = share(alice_browser, hub, username="bob")
    assert answer.status_code == 200 and "Shared with bob." in answer.content.decode()
    mine = hub.create_node("Porch light").json()["data"]["id"]
    bobs = hub.create_node("Bob's lamp", uid=services.public_user_id(bob)).json()["data"]["id"]
    return mine, bobs


def test_the_hub_speaks_for_both_users_nodes_over_the_websocket(
    shared, hub, device_certificate, alice, bob
):
    mine, bobs = shared
    registered = {"did": hub.did, "accessToken": hub.token}

    async def scenario():
        socket = DeviceSocket(device_certificate)
        assert await socket.connect()
        assert (await socket.ask(register_frame(registered, cid="r")))["data"]["code"] == "200"
        replies = [
            await socket.ask({"type": "message", "sdid": mine, "data": {"light": "on"}}),
            await socket.ask({"type": "message", "sdid": bobs, "data": {"lamp": 40}}),
        ]
        await socket.disconnect()
        return replies

    replies = run_and_return(scenario)
    assert all(set(reply["data"]) == {"mid"} for reply in replies), replies
    by_node = {m.device.secure.did: (m.device.owner, m.data) for m in Message.objects.all()}
    assert by_node == {mine: (alice, {"light": "on"}), bobs: (bob, {"lamp": 40})}
    assert set(Message.objects.values_list("channel", flat=True)) == {Message.WEBSOCKET}


def run_and_return(scenario):
    result = []

    async def keep():
        result.append(await scenario())

    run(keep)
    return result[0]


def test_each_user_sees_their_own_nodes_under_the_hub(shared, hub, alice_browser, bob_browser):
    mine, bobs = shared
    alices_page = alice_browser.get(reverse("registrations:my-devices")).content.decode()
    assert "Porch light" in alices_page and "Bob&#x27;s lamp" not in alices_page
    assert alices_page.index("Hall thermostat") < alices_page.index("Porch light")
    assert 'class="end-node"' in alices_page
    bobs_page = bob_browser.get(reverse("registrations:my-devices")).content.decode()
    assert "Hubs shared with you" in bobs_page and "shared by alice" in bobs_page
    assert "Bob&#x27;s lamp" in bobs_page and "Porch light" not in bobs_page
    # Bob opens his own node, not Alice's or the hub.
    node_of = {did: Device.objects.get(secure__did=did).pk for did in (mine, bobs)}
    assert (
        bob_browser.get(reverse("registrations:my-device", args=[node_of[bobs]])).status_code == 200
    )
    for pk in (node_of[mine], hub_device(hub).pk):
        assert bob_browser.get(reverse("registrations:my-device", args=[pk])).status_code == 404
    # Alice's hub page lists Bob.
    hub_page = alice_browser.get(reverse("registrations:my-device", args=[hub_device(hub).pk]))
    assert "Stop sharing with bob" in hub_page.content.decode()


def test_unsharing_stops_the_hub_speaking_for_that_users_nodes(shared, hub, alice_browser, bob):
    mine, bobs = shared
    answer = share(alice_browser, hub, remove=str(bob.pk))
    assert "No longer shared" in answer.content.decode()
    assert not HubMember.objects.exists()
    assert hub.send(bobs, {"lamp": 1}).status_code == 403
    assert hub.send(mine, {"light": "off"}).status_code == 200
    assert Device.objects.get(secure__did=bobs).owner == bob  # still Bob's, detached
    assert hub.create_node("Another", uid=services.public_user_id(bob)).status_code == 403
    assert Event.objects.filter(reason__contains="no longer shared by alice with bob").exists()


def test_sharing_is_refused_for_strangers_selves_and_non_owners(
    hub, alice_browser, bob_browser, bob, other_hub
):
    for username, refusal in [
        ("nobody", "No other account has that username."),
        ("alice", "No other account has that username."),
        ("", "Give the username of the account to share with."),
    ]:
        assert refusal in share(alice_browser, hub, username=username).content.decode()
    # Bob cannot share Alice's hub, nor read its sharing page; Alice cannot share Bob's.
    url = reverse("registrations:my-device-sharing", args=[hub_device(hub).pk])
    assert bob_browser.post(url, {"username": "bob"}).status_code == 404
    other = reverse("registrations:my-device-sharing", args=[hub_device(other_hub).pk])
    assert alice_browser.post(other, {"username": "alice"}).status_code == 404
    assert alice_browser.post(url, {"remove": "not a number"}).status_code == 302
    assert not HubMember.objects.exists()


def test_a_device_that_is_no_hub_cannot_be_shared(
    secure_client, secure_connector, alice_browser, bob
):
    from tests.support.secure_devices import register

    done = register(secure_client, alice_browser, secure_connector)
    device = Device.objects.get(secure__did=done["did"])
    url = reverse("registrations:my-device-sharing", args=[device.pk])
    page = alice_browser.post(url, {"username": "bob"}, follow=True).content.decode()
    assert "act as a hub" in page and not HubMember.objects.exists()
    assert (
        "Shared with"
        not in alice_browser.get(
            reverse("registrations:my-device", args=[device.pk])
        ).content.decode()
    )


def test_a_released_hub_is_shared_with_nobody(shared, hub, alice_browser):
    device = hub_device(hub)
    alice_browser.post(reverse("registrations:my-device-release", args=[device.pk]))
    assert not HubMember.objects.exists()


def test_an_app_of_the_user_a_hub_is_shared_with_lists_it_as_shared(
    shared, hub, owner, bob, bob_browser
):
    from tests.registrations.test_artik_user_api import call, refused
    from tests.support import oauth as flow

    mine, bobs = shared
    access = flow.tokens_for(bob_browser, flow.register(owner))["access_token"]
    uid = services.public_user_id(bob)

    def ids(owner_filter):
        answer = call(access, "GET", f"/v1.1/users/{uid}/devices?owner={owner_filter}")
        assert answer.status_code == 200, answer.content
        return {device["id"] for device in answer.json()["data"]["devices"]}

    assert ids("OWNED") == {bobs}
    assert ids("SHARED") == {hub.did}
    assert ids("ALL") == {bobs, hub.did}
    described = call(access, "GET", f"/v1.1/devices/{hub.did}")
    assert described.status_code == 200 and described.json()["data"]["id"] == hub.did
    # The hub's own messages and the owner's node stay the owner's.
    refused(call(access, "GET", f"/v1.1/messages/last?sdids={hub.did}"), 404)
    refused(call(access, "GET", f"/v1.1/devices/{mine}"), 404)
