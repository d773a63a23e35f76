"""Editing a device's name and tags from its page in the portal."""

import pytest
from django.urls import reverse

from audit.models import Event
from devices import services
from devices.forms import MAX_TAG_TEXT
from devices.models import Device

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(connector):
    return services.whitelist_device(
        connector, "00000001", name="Boiler", tags=[{"name": "group", "value": "g1"}]
    )


def edit_url(device) -> str:
    return f"/connectors/{device.connector_id}/devices/{device.pk}/edit/"


def test_the_device_page_offers_the_form_filled_in(owner_client, device):
    page = owner_client.get(f"/connectors/{device.connector_id}/devices/{device.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f'action="{edit_url(device)}"' in text
    assert "group=g1</textarea>" in text
    assert 'value="Boiler"' in text
    assert owner_client.get(edit_url(device)).status_code == 200


def test_a_maker_renames_and_retags_a_device_and_the_change_is_logged(owner_client, device):
    response = owner_client.post(
        edit_url(device), {"name": "Kitchen boiler", "tags": "group=g2\n\nfloor = 3\n"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/{device.connector_id}/devices/{device.pk}/"
    device.refresh_from_db()
    assert device.name == "Kitchen boiler"
    assert device.tags == [{"name": "group", "value": "g2"}, {"name": "floor", "value": "3"}]
    change = Event.objects.get(kind=Event.CHANGE, identity="00000001")
    assert change.reason.startswith("changed by owner via portal: name 'Boiler' → 'Kitchen boiler'")
    assert "tags [{'name': 'group', 'value': 'g1'}] → " in change.reason
    assert change.actor_name == "owner"
    page = owner_client.get(response["Location"])
    assert b"name and tags saved" in page.content
    assert b"<b>floor</b>=3" in page.content


def test_tags_may_be_the_csv_json_list_and_may_all_go(owner_client, device):
    owner_client.post(edit_url(device), {"name": "", "tags": '[{"name": "a", "value": 1}]'})
    device.refresh_from_db()
    assert (device.name, device.tags) == ("", [{"name": "a", "value": "1"}])
    owner_client.post(edit_url(device), {"name": "", "tags": ""})
    device.refresh_from_db()
    assert device.tags == []
    assert Event.objects.filter(kind=Event.CHANGE).count() == 2


def test_saving_what_is_already_there_logs_nothing(owner_client, device):
    response = owner_client.post(
        edit_url(device), {"name": "Boiler", "tags": "group=g1"}, follow=True
    )
    assert b"Nothing changed." in response.content
    assert not Event.objects.filter(kind=Event.CHANGE).exists()


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"name": "", "tags": "group=g1\nzone=a\x00b"}, "tags", "Null characters are not allowed."),
        ({"name": "A\x00", "tags": ""}, "name", "Null characters are not allowed."),
        ({"name": "x" * 101, "tags": ""}, "name", "at most 100 characters"),
        ({"name": "two\nlines", "tags": ""}, "name", "no control characters"),
        (
            {"name": "", "tags": "\n".join(f"tag{n}=v" for n in range(3000))},
            "tags",
            f"at most {MAX_TAG_TEXT} characters",
        ),
        ({"name": "", "tags": f"{'n' * 65}=v"}, "tags", "at most 64 characters"),
        ({"name": "", "tags": f"n={'v' * 257}"}, "tags", "at most 256 characters"),
        ({"name": "", "tags": "group g1"}, "tags", "Line 1: write each tag as name=value."),
        ({"name": "", "tags": "=v"}, "tags", "Line 1: write each tag as name=value."),
        ({"name": "", "tags": '[{"name": "a"}]'}, "tags", 'exactly "name" and "value"'),
        ({"name": "", "tags": "[not json"}, "tags", "Not valid JSON"),
    ],
)
def test_bad_input_is_a_400_next_to_the_field_and_changes_nothing(
    owner_client, device, data, field, message
):
    response = owner_client.post(edit_url(device), data)
    assert response.status_code == 400
    errors = response.context["edit_form"].errors
    assert list(errors) == [field]
    assert message in " ".join(errors[field])
    assert message.replace('"', "&quot;") in response.content.decode()
    device.refresh_from_db()
    assert (device.name, device.tags) == ("Boiler", [{"name": "group", "value": "g1"}])
    assert not Event.objects.filter(kind=Event.CHANGE).exists()


def test_another_maker_gets_a_404_and_changes_nothing(other_browser, device):
    assert other_browser.get(edit_url(device)).status_code == 404
    response = other_browser.post(edit_url(device), {"name": "Mine", "tags": "x=y"})
    assert response.status_code == 404
    device.refresh_from_db()
    assert device.name == "Boiler"
    assert not Event.objects.filter(kind=Event.CHANGE).exists()


def test_a_device_of_another_connector_is_a_404(owner_client, device, make_connector):
    other = make_connector()
    url = f"/connectors/{other.pk}/devices/{device.pk}/edit/"
    assert owner_client.post(url, {"name": "Moved", "tags": ""}).status_code == 404
    assert Device.objects.get(pk=device.pk).name == "Boiler"


def test_signed_out_visitors_are_sent_to_sign_in(client, device):
    response = client.post(edit_url(device), {"name": "Mine", "tags": ""})
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")
    assert Device.objects.get(pk=device.pk).name == "Boiler"
