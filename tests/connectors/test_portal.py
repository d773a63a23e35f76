"""Portal pages for signing in, the connector list, creation, settings, tester and resources."""

import pytest
from django.test import Client

from connectors.models import Connector, Resource

pytestmark = pytest.mark.django_db


def settings_data(**changes) -> dict:
    data = {
        "name": "Thermostats",
        "identity_type": "base10",
        "identity_prefix": "",
        "identity_mac_style": "colon",
        "identity_length": "8",
        "auth_mode": "token",
        "window_amount": "24",
        "window_unit": "hours",
        "ip_allowlist_text": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_pages_need_a_signed_in_user(connector):
    client = Client()
    for url in ["/", "/connectors/", f"/connectors/{connector.pk}/settings/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


def test_sign_in_with_the_right_password_then_sign_out(owner):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    assert page.status_code == 200
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/login/",
        {"username": "owner", "password": "owner-pass-123", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    token = client.cookies["csrftoken"].value
    response = client.post("/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_told_on_the_sign_in_page(owner):
    response = Client().post("/login/", {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_sign_in_without_csrf_token_is_refused(owner):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 403


def test_connector_list_shows_only_connectors_the_user_manages(
    owner_client, other_browser, connector
):
    assert connector.name.encode() in owner_client.get("/connectors/").content
    assert connector.name.encode() not in other_browser.get("/connectors/").content
    assert connector.name.encode() in owner_client.get("/").content


def test_manager_sees_the_connector(other_browser, other_user, connector):
    connector.managers.add(other_user)
    assert other_browser.get(f"/connectors/{connector.pk}/settings/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/connectors/{id}/",
        "/connectors/{id}/settings/",
        "/connectors/{id}/resources/",
        "/connectors/{id}/identity-check?id=1",
        "/connectors/{id}/devices/",
        "/connectors/{id}/devices/new/",
        "/connectors/{id}/logs/",
        "/connectors/{id}/logs/feed?after=0",
        "/connectors/{id}/imports/new/",
    ],
)
def test_someone_elses_connector_is_404(other_browser, connector, path):
    assert other_browser.get(path.format(id=connector.pk)).status_code == 404


@pytest.mark.parametrize(
    "bad_id", ["nope", "dt" + "0" * 32, "%00", "dt%00" + "0" * 31, "x" * 300, "dt'--"]
)
def test_unknown_connector_ids_are_404(owner_client, bad_id):
    assert owner_client.get(f"/connectors/{bad_id}/settings/").status_code == 404
    assert owner_client.get(f"/connectors/{bad_id}/devices/").status_code == 404


def test_create_connector_makes_the_user_its_owner(owner_client, owner):
    response = owner_client.post("/connectors/new/", settings_data())
    connector = Connector.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/{connector.pk}/settings/"
    assert connector.owner == owner
    assert connector.identity_type == "base10"
    assert connector.identity_length == 8
    assert connector.activation_window_seconds == 24 * 3600


def test_create_connector_without_name_says_so_next_to_the_field(owner_client):
    response = owner_client.post("/connectors/new/", settings_data(name="  "))
    assert response.status_code == 200
    assert b'id="id_name_error"' in response.content
    assert Connector.objects.count() == 0


def test_settings_page_shows_device_host_path_form_and_curl_examples(owner_client, connector):
    response = owner_client.get(f"/connectors/{connector.pk}/settings/")
    body = response.content.decode()
    assert connector.device_host in body
    assert f"http://testserver/c/{connector.pk}" in body
    assert f"http://{connector.device_host}/provision/activate" in body
    assert "Authorization: Token &lt;device-token&gt;" in body
    assert "id=00000001" in body  # an example identity that matches base10 of length 8
    assert "myalias=50" in body


def test_password_connector_examples_send_a_password(owner_client, make_connector):
    connector = make_connector(auth_mode="password")
    body = owner_client.get(f"/connectors/{connector.pk}/settings/").content.decode()
    assert "password=&lt;password of at least 20 bytes&gt;" in body
    assert "Authorization: Basic" in body


def test_certificate_connector_examples_use_a_client_certificate(owner_client, make_connector):
    connector = make_connector(auth_mode="certificate", identity_type="mac")
    body = owner_client.get(f"/connectors/{connector.pk}/settings/").content.decode()
    assert "--cert device-cert.pem --key device-key.pem" in body
    assert "/CN=00:14:22:01:23:45" in body


def test_settings_save_identity_format_auth_and_provisioning(owner_client, connector):
    response = owner_client.post(
        f"/connectors/{connector.pk}/settings/",
        settings_data(
            identity_type="mac",
            identity_mac_style="dash",
            identity_prefix="CC3220-",
            identity_length="12",
            auth_mode="password",
            self_registration="on",
            restrict_ips="on",
            ip_allowlist_text="10.1.2.3/8\n2001:db8::/32, 192.0.2.7",
            window_amount="2",
            window_unit="days",
        ),
    )
    assert response.status_code == 302
    connector.refresh_from_db()
    assert connector.identity_type == "mac"
    assert connector.identity_mac_style == "dash"
    assert connector.identity_prefix == "CC3220-"
    assert connector.identity_length is None  # a MAC address has its own length
    assert connector.auth_mode == "password"
    assert connector.self_registration is True
    assert connector.ip_allowlist == ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]
    assert connector.activation_window_seconds == 2 * 86400


def test_turning_the_ip_restriction_off_clears_the_allowlist(owner_client, make_connector):
    connector = make_connector(ip_allowlist=["10.0.0.0/8"])
    page = owner_client.get(f"/connectors/{connector.pk}/settings/").content.decode()
    assert "10.0.0.0/8" in page
    owner_client.post(
        f"/connectors/{connector.pk}/settings/",
        settings_data(ip_allowlist_text="not an address"),
    )
    connector.refresh_from_db()
    assert connector.ip_allowlist == []


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"restrict_ips": "on", "ip_allowlist_text": "10.0.0.0/33"},
            "ip_allowlist_text",
            "10.0.0.0/33",
        ),
        ({"restrict_ips": "on", "ip_allowlist_text": ""}, "ip_allowlist_text", "at least one"),
        ({"identity_length": "0"}, "identity_length", "greater than or equal to 1"),
        ({"identity_length": "500"}, "identity_length", "less than or equal to 128"),
        ({"identity_length": "abc"}, "identity_length", "Enter a whole number"),
        ({"identity_prefix": "has space"}, "identity_prefix", "printable characters only"),
        ({"identity_type": "roman"}, "identity_type", "Select a valid choice"),
        ({"auth_mode": "magic"}, "auth_mode", "Select a valid choice"),
        ({"window_amount": "0"}, "window_amount", "greater than or equal to 1"),
        ({"window_amount": "400", "window_unit": "days"}, "window_amount", "between 1 minute"),
        ({"window_amount": ""}, "window_amount", "required"),
        ({"window_unit": "fortnights"}, "window_unit", "Select a valid choice"),
    ],
)
def test_bad_settings_are_refused_with_a_message_next_to_the_field(
    owner_client, connector, changes, field, message
):
    before = Connector.objects.values().get(pk=connector.pk)
    response = owner_client.post(f"/connectors/{connector.pk}/settings/", settings_data(**changes))
    assert response.status_code == 200
    body = response.content.decode()
    error_start = body.index(f'id="id_{field}_error"')
    assert message in body[error_start : error_start + 600]
    assert Connector.objects.values().get(pk=connector.pk) == before


def test_settings_post_needs_csrf_token(owner, connector):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(f"/connectors/{connector.pk}/settings/", settings_data(name="Evil"))
    assert response.status_code == 403
    connector.refresh_from_db()
    assert connector.name != "Evil"


def test_identity_tester_accepts_a_matching_id_with_the_saved_format(owner_client, connector):
    answer = owner_client.get(f"/connectors/{connector.pk}/identity-check?id=00000001").json()
    assert answer["ok"] is True
    assert answer["identity"] == "00000001"


def test_identity_tester_says_why_an_id_does_not_match(owner_client, connector):
    answer = owner_client.get(f"/connectors/{connector.pk}/identity-check?id=12ab").json()
    assert answer["ok"] is False
    assert "exactly 8 decimal digits" in answer["message"]


def test_identity_tester_checks_the_format_being_edited(owner_client, connector):
    url = f"/connectors/{connector.pk}/identity-check"
    good = owner_client.get(url, {"id": "AA:BB:CC:DD:EE:FF", "type": "mac", "mac_style": "colon"})
    assert good.json() == {
        "ok": True,
        "identity": "aa:bb:cc:dd:ee:ff",
        "message": "Matches (stored as aa:bb:cc:dd:ee:ff).",
        "format": "a MAC address written aa:bb:cc:dd:ee:ff",
        "example": "00:14:22:01:23:45",
    }
    bad = owner_client.get(url, {"id": "aa-bb-cc-dd-ee-ff", "type": "mac", "mac_style": "colon"})
    assert bad.json()["ok"] is False
    assert "not a MAC address in this style" in bad.json()["message"]


def test_identity_tester_on_the_new_connector_page_needs_a_type(owner_client):
    assert owner_client.get("/connectors/identity-check?id=1").status_code == 400
    answer = owner_client.get("/connectors/identity-check?id=12&type=base10&length=3").json()
    assert answer["ok"] is False


@pytest.mark.parametrize(
    "query", ["length=abc", "length=-1", "type=roman", "mac_style=weird", "id=" + "1" * 2000]
)
def test_identity_tester_answers_bad_queries_with_400(owner_client, connector, query):
    response = owner_client.get(f"/connectors/{connector.pk}/identity-check?{query}")
    assert response.status_code == 400
    assert response.json()["ok"] is False


def test_define_and_remove_a_resource(owner_client, connector):
    url = f"/connectors/{connector.pk}/resources/"
    assert owner_client.post(url, {"alias": "temperature", "format": "number"}).status_code == 302
    resource = Resource.objects.get(connector=connector, alias="temperature")
    assert b"temperature" in owner_client.get(url).content
    response = owner_client.post(f"{url}{resource.pk}/delete")
    assert response.status_code == 302
    assert not Resource.objects.filter(pk=resource.pk).exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"alias": "myalias", "format": "number"}, "already defines that alias"),
        ({"alias": "has space", "format": "number"}, "Aliases use letters"),
        ({"alias": "ok", "format": "xml"}, "Select a valid choice"),
        ({"alias": "", "format": "number"}, "required"),
    ],
)
def test_bad_resource_is_refused_next_to_the_field(owner_client, connector, data, message):
    response = owner_client.post(f"/connectors/{connector.pk}/resources/", data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list(connector.resources.values_list("alias", flat=True)) == ["myalias"]


def test_removing_someone_elses_resource_is_404(other_browser, connector):
    resource = connector.resources.get()
    response = other_browser.post(f"/connectors/{connector.pk}/resources/{resource.pk}/delete")
    assert response.status_code == 404
    assert Resource.objects.filter(pk=resource.pk).exists()


def test_resource_removal_needs_post(owner_client, connector):
    resource = connector.resources.get()
    url = f"/connectors/{connector.pk}/resources/{resource.pk}/delete"
    assert owner_client.get(url).status_code == 405
    assert Resource.objects.filter(pk=resource.pk).exists()
