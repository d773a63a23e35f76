"""Every admin action leaves a line naming who did it, whichever door they used:
the portal, the management API, the Django admin or a management command."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts.models import ApiToken
from audit.models import Event
from certificates.models import IssuedCertificate, RevokedCertificate, TrustAnchor
from connectors.models import Connector, Resource
from devices.models import Device
from tests.support.audit import log_of
from tests.support.tls import make_ca, make_certificate

pytestmark = pytest.mark.django_db


def test_connector_create_and_change_through_the_api_name_the_actor(api_client, owner):
    created = api_client.post(
        "/api/v1/connectors/",
        {"name": "Meters", "identity_format": {"type": "base10", "length": 8}},
    )
    assert created.status_code == 201
    connector_id = created.json()["id"]
    changed = api_client.patch(
        f"/api/v1/connectors/{connector_id}/",
        {"auth_mode": "password", "ip_allowlist": ["10.0.0.0/8"]},
    )
    assert changed.status_code == 200
    api_client.patch(f"/api/v1/connectors/{connector_id}/", {"name": "Meters"})  # no change

    lines = list(log_of(connector_id))
    assert [(line.kind, line.actor_id) for line in lines] == [
        (Event.CREATE, owner.pk),
        (Event.CHANGE, owner.pk),
    ]
    assert "“Meters” created" in lines[0].reason
    assert "auth_mode 'token' → 'password'" in lines[1].reason
    assert "ip_allowlist [] → ['10.0.0.0/8']" in lines[1].reason
    assert "name" not in lines[1].reason.split(":", 1)[1]


def test_connector_create_and_settings_in_the_portal_name_the_actor(owner_browser, owner):
    form = {
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
    assert owner_browser.post("/connectors/new/", form).status_code == 302
    connector = Connector.objects.get()
    response = owner_browser.post(
        f"/connectors/{connector.pk}/settings/", {**form, "self_registration": "on"}
    )
    assert response.status_code == 302

    lines = list(log_of(connector.pk))
    assert [(line.kind, line.actor_name) for line in lines] == [
        (Event.CREATE, "owner"),
        (Event.CHANGE, "owner"),
    ]
    assert "self_registration False → True" in lines[1].reason
    assert "owner via portal" in lines[1].reason


def test_connector_add_and_change_in_the_admin_name_the_actor(admin_client, owner, other_user):
    form = {
        "name": "Admin made",
        "owner": owner.pk,
        "identity_prefix": "",
        "identity_type": "base10",
        "identity_mac_style": "colon",
        "identity_length": "8",
        "auth_mode": "token",
        "ip_allowlist": "[]",
        "activation_window_seconds": "86400",
        "resources-TOTAL_FORMS": "1",
        "resources-INITIAL_FORMS": "0",
        "resources-MIN_NUM_FORMS": "0",
        "resources-MAX_NUM_FORMS": "1000",
        "resources-0-alias": "temp",
        "resources-0-format": "number",
    }
    assert admin_client.post("/admin/connectors/connector/add/", form).status_code == 302
    connector = Connector.objects.get()
    resource = Resource.objects.get()
    form.update(
        {
            "managers": [other_user.pk],
            "resources-INITIAL_FORMS": "1",
            "resources-0-id": resource.pk,
            "resources-0-connector": connector.pk,
            "resources-0-DELETE": "on",
        }
    )
    response = admin_client.post(f"/admin/connectors/connector/{connector.pk}/change/", form)
    assert response.status_code == 302

    lines = list(log_of(connector.pk))
    assert [(line.kind, line.actor_name) for line in lines] == [
        (Event.CREATE, "admin"),
        (Event.CREATE, "admin"),
        (Event.DELETE, "admin"),
        (Event.CHANGE, "admin"),
    ]
    assert "alias “temp” defined" in lines[1].reason
    assert "alias “temp” removed" in lines[2].reason
    assert "managers [] → ['other']" in lines[3].reason


def test_resources_defined_and_removed_name_the_actor(api_client, owner_browser, connector):
    base = f"/api/v1/connectors/{connector.pk}/resources/"
    assert api_client.post(base, {"alias": "humidity", "format": "number"}).status_code == 201
    assert api_client.patch(f"{base}humidity/", {"format": "string"}).status_code == 200
    assert api_client.delete(f"{base}humidity/").status_code == 204
    resource = Resource.objects.get(alias="myalias")
    assert (
        owner_browser.post(
            f"/connectors/{connector.pk}/resources/", {"alias": "power", "format": "number"}
        ).status_code
        == 302
    )
    owner_browser.post(f"/connectors/{connector.pk}/resources/{resource.pk}/delete")

    lines = [(line.kind, line.actor_name, line.reason) for line in log_of(connector.pk)]
    assert lines == [
        (Event.CREATE, "owner", "alias “humidity” defined (number) by owner via API"),
        (
            Event.CHANGE,
            "owner",
            "alias “humidity” (number) is now “humidity” (string) by owner via API",
        ),
        (Event.DELETE, "owner", "alias “humidity” removed by owner via API"),
        (Event.CREATE, "owner", "alias “power” defined (number) by owner via portal"),
        (Event.DELETE, "owner", "alias “myalias” removed by owner via portal"),
    ]


def test_device_admin_actions_name_the_actor(api_client, busy):
    base = f"/api/v1/connectors/{busy.pk}/devices/"
    assert api_client.post(base, {"identity": "00000009"}).status_code == 201
    assert api_client.post(f"{base}00000001/revoke").status_code == 200
    assert api_client.post(f"{base}00000001/reset", {}).status_code == 200

    lines = Event.objects.filter(kind__in=["whitelist", "revoke", "reset"], actor__isnull=False)
    assert [(line.kind, line.identity, line.actor_name) for line in lines.order_by("id")] == [
        (Event.WHITELIST, "00000009", "owner"),
        (Event.REVOKE, "00000001", "owner"),
        (Event.RESET, "00000001", "owner"),
    ]
    # What devices do is not anyone's admin action.
    assert not Event.objects.filter(kind__in=["write", "provision"], actor__isnull=False).exists()
    assert not Event.objects.filter(kind="write").exclude(actor_name="").exists()


def test_device_changes_through_the_api_are_logged(api_client, busy):
    url = f"/api/v1/connectors/{busy.pk}/devices/00000001/"
    response = api_client.patch(url, {"name": "Hall", "tags": [{"name": "room", "value": "1"}]})
    assert response.status_code == 200
    api_client.patch(url, {"name": "Hall"})  # no change, no line

    (line,) = Event.objects.filter(kind=Event.CHANGE)
    assert (line.identity, line.actor_name) == ("00000001", "owner")
    assert line.reason == (
        "changed by owner via API: name '' → 'Hall'; tags [] → [{'name': 'room', 'value': '1'}]"
    )


def test_device_changes_in_the_admin_are_logged(admin_client, busy, other_user):
    device = Device.objects.get(identity="00000001")
    credentials = device.credentials.all()
    form = {
        "name": "Kitchen",
        "tags": "[]",
        "owner": other_user.pk,
        "parent": "",
        "credentials-TOTAL_FORMS": str(len(credentials)),
        "credentials-INITIAL_FORMS": str(len(credentials)),
        "credentials-MIN_NUM_FORMS": "0",
        "credentials-MAX_NUM_FORMS": "1000",
    }
    for number, credential in enumerate(credentials):
        form[f"credentials-{number}-id"] = credential.pk
        form[f"credentials-{number}-device"] = device.pk
    response = admin_client.post(f"/admin/devices/device/{device.pk}/change/", form)
    assert response.status_code == 302

    line = Event.objects.get(kind=Event.CHANGE)
    assert (line.identity, line.actor_name) == ("00000001", "admin")
    assert "name '' → 'Kitchen'" in line.reason
    assert "owner None → 'other'" in line.reason
    assert "tags" not in line.reason


def test_api_tokens_issued_and_deleted_are_logged_without_a_connector(api_client, owner):
    issued = api_client.post("/api/v1/tokens/", {"name": "ci"})
    assert issued.status_code == 201
    token_id = issued.json()["id"]
    assert api_client.delete(f"/api/v1/tokens/{token_id}/").status_code == 204

    lines = list(Event.objects.filter(connector__isnull=True).order_by("id"))
    assert [(line.kind, line.actor_name) for line in lines] == [
        (Event.CREATE, "owner"),
        (Event.DELETE, "owner"),
    ]
    prefix = issued.json()["prefix"]
    assert f"API token {prefix}… “ci” of owner issued by owner via API" == lines[0].reason
    # The clear token is never logged, only the prefix the admin already shows.
    assert issued.json()["token"] not in lines[0].reason


def test_api_tokens_deleted_in_the_admin_are_logged(admin_client, owner):
    ApiToken.issue(owner, "one")
    ApiToken.issue(owner, "two")
    response = admin_client.post(
        "/admin/accounts/apitoken/",
        {
            "action": "delete_selected",
            "_selected_action": list(ApiToken.objects.values_list("pk", flat=True)),
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    lines = Event.objects.filter(kind=Event.DELETE, connector__isnull=True)
    assert sorted(line.reason.split("“")[1].split("”")[0] for line in lines) == ["one", "two"]
    assert {line.actor_name for line in lines} == {"admin"}


def test_certificate_actions_through_the_api_name_the_actor(api_client, make_connector):
    connector = make_connector(auth_mode="certificate", identity_type="base10", identity_length=8)
    base = f"/api/v1/connectors/{connector.pk}/"
    assert api_client.post(f"{base}ca/", {}).status_code == 201
    issued = api_client.post(f"{base}ca/issue", {"name": "00000001"}).json()
    assert api_client.post(f"{base}certificates/{issued['fingerprint']}/revoke").status_code == 200
    vendor = make_ca("Vendor device CA")
    anchor = api_client.post(f"{base}trust-anchors/", {"certificate": vendor.cert_pem}).json()
    proof = make_certificate(anchor["verification_code"], issuer=vendor)
    verify = api_client.post(
        f"{base}trust-anchors/{anchor['id']}/verify", {"certificate": proof.cert_pem}
    )
    assert verify.status_code == 200
    assert api_client.delete(f"{base}trust-anchors/{anchor['id']}/").status_code == 204

    lines = list(log_of(connector.pk))
    assert len(lines) == 6
    assert {(line.kind, line.actor_name) for line in lines} == {(Event.CERTIFICATE, "owner")}
    reasons = " | ".join(line.reason for line in lines)
    for done in ("authority created", "issued certificate", "revoked", "verified", "deleted"):
        assert done in reasons


def test_an_import_started_through_the_api_names_the_actor(api_client, connector):
    csv = SimpleUploadedFile("ids.csv", b"ID,TLS Client Certificate,Tags\n00000001,,\n")
    response = api_client.post(
        f"/api/v1/connectors/{connector.pk}/imports/", {"file": csv}, format="multipart"
    )
    assert response.status_code in (201, 202), response.content

    lines = list(log_of(connector.pk).filter(kind=Event.IMPORT))
    assert [line.actor_name for line in lines] == ["owner", "owner"]
    assert "started" in lines[0].reason and "by owner via API" in lines[0].reason
    assert "1 whitelisted" in lines[1].reason


def test_the_events_api_says_who_did_what(api_client, busy):
    api_client.post(f"/api/v1/connectors/{busy.pk}/devices/00000001/revoke")

    events = api_client.get(f"/api/v1/connectors/{busy.pk}/events/").json()["results"]

    assert events[0]["kind"] == "revoke"
    assert events[0]["actor"] == "owner"
    assert {event["actor"] for event in events[1:]} == {""}


def test_certificates_are_revoked_in_the_admin_only_through_the_service(admin_client, pki):
    active = IssuedCertificate.objects.get(common_name="00000002")
    assert (
        admin_client.get(f"/admin/certificates/issuedcertificate/{active.pk}/delete/").status_code
        == 403
    )
    assert (
        admin_client.post(
            f"/admin/certificates/issuedcertificate/{active.pk}/change/", {"state": "revoked"}
        ).status_code
        == 403
    )
    revoked = RevokedCertificate.objects.get()
    assert (
        admin_client.post(
            f"/admin/certificates/revokedcertificate/{revoked.pk}/delete/", {"post": "yes"}
        ).status_code
        == 403
    )
    listing = admin_client.get("/admin/certificates/revokedcertificate/")
    assert listing.context["action_form"] is None

    response = admin_client.post(
        "/admin/certificates/issuedcertificate/",
        {"action": "revoke_certificates", "_selected_action": [active.pk]},
    )

    assert response.status_code == 302
    active.refresh_from_db()
    assert active.state == IssuedCertificate.REVOKED
    assert RevokedCertificate.objects.count() == 2
    line = log_of(pki.pk).last()
    assert (line.kind, line.identity, line.actor_name) == (Event.CERTIFICATE, "", "admin")
    assert "revoked by admin via admin" in line.reason


def test_trust_anchors_changed_in_the_admin_are_logged(admin_client, pki):
    anchor = TrustAnchor.objects.get()
    url = f"/admin/certificates/trustanchor/{anchor.pk}/"
    assert admin_client.get("/admin/certificates/trustanchor/add/").status_code == 403
    assert admin_client.post(f"{url}change/", {"name": "Vendor"}).status_code == 302
    anchor.refresh_from_db()
    assert not anchor.enabled
    assert admin_client.post(f"{url}delete/", {"post": "yes"}).status_code == 302

    disabled, deleted = log_of(pki.pk).filter(actor_name="admin")
    assert " disabled" in disabled.reason and "by admin via admin" in disabled.reason
    assert " deleted by admin via admin" in deleted.reason


# --- accounts: roles, users, groups (no connector) -----------------------------------------


def account_lines():
    return list(Event.objects.filter(connector__isnull=True).order_by("id"))


def test_granting_and_taking_the_maker_role_in_the_admin_is_logged(admin_client, end_user):
    admin_client.post(
        "/admin/auth/user/", {"action": "grant_device_maker", "_selected_action": [end_user.pk]}
    )
    admin_client.post(
        "/admin/auth/user/", {"action": "revoke_device_maker", "_selected_action": [end_user.pk]}
    )

    assert [(line.kind, line.actor_name, line.reason) for line in account_lines()] == [
        (Event.CHANGE, "admin", "device maker role granted to enduser by admin via admin"),
        (Event.CHANGE, "admin", "device maker role taken from enduser by admin via admin"),
    ]


def test_the_grant_command_logs_the_role_without_a_person(end_user):
    call_command("grant_device_maker", "enduser", stdout=io.StringIO())
    call_command("grant_device_maker", "enduser", stdout=io.StringIO())  # already: no line
    call_command("grant_device_maker", "enduser", "--revoke", stdout=io.StringIO())

    assert [(line.actor_id, line.actor_name, line.reason) for line in account_lines()] == [
        (None, "", "device maker role granted to enduser by manage.py grant_device_maker"),
        (None, "", "device maker role taken from enduser by manage.py grant_device_maker"),
    ]


def test_users_added_promoted_and_deleted_in_the_admin_are_logged(admin_client, admin_user):
    added = admin_client.post(
        "/admin/auth/user/add/",
        {
            "username": "newcomer",
            "password1": "a-long-pass-phrase-1",
            "password2": "a-long-pass-phrase-1",
            "usable_password": "true",
        },
    )
    assert added.status_code == 302, added.content.decode()
    user = get_user_model().objects.get(username="newcomer")
    changed = admin_client.post(
        f"/admin/auth/user/{user.pk}/change/",
        {
            "username": "newcomer",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert changed.status_code == 302, changed.content.decode()
    password = admin_client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": "another-pass-phrase-2", "password2": "another-pass-phrase-2"},
    )
    assert password.status_code == 302
    deleted = admin_client.post(f"/admin/auth/user/{user.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302

    lines = account_lines()
    assert [(line.kind, line.actor_id) for line in lines] == [
        (Event.CREATE, admin_user.pk),
        (Event.CHANGE, admin_user.pk),
        (Event.CHANGE, admin_user.pk),
        (Event.DELETE, admin_user.pk),
    ]
    assert lines[0].reason == "user newcomer added by admin via admin"
    assert "is_staff False → True; is_superuser False → True" in lines[1].reason
    assert lines[2].reason == "password of user newcomer set by admin via admin"
    assert "another-pass-phrase-2" not in " ".join(line.reason for line in lines)
    assert lines[3].reason == "user newcomer deleted by admin via admin"


def test_a_group_given_the_maker_permission_in_the_admin_is_logged(admin_client):
    permission = Permission.objects.get(codename="device_maker")
    response = admin_client.post(
        "/admin/auth/group/add/", {"name": "Factory line", "permissions": [permission.pk]}
    )
    assert response.status_code == 302

    (line,) = account_lines()
    assert (line.kind, line.actor_name) == (Event.CREATE, "admin")
    assert line.reason == (
        "group Factory line added with permissions ['accounts.device_maker'] by admin via admin"
    )
