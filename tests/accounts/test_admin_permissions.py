"""Who may do what in the Django admin, and what it leaves in the log.

"View" shows rows and nothing more: every action of every admin page is walked as
a staff user who may only view that model. Deleting by hand either leaves a
`delete` line naming the admin or is refused. The management API's schema and
docs are for device makers only.
"""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client, RequestFactory

from accounts.models import ApiToken
from audit.models import Event
from certificates.models import IssuedCertificate
from devices.models import DataPoint, Device, IngestMark, WhitelistImport
from registrations.models import (
    HubMember,
    HubPolicy,
    Message,
    PairingGuess,
    Registration,
    SecureDevice,
)
from tests.support.secure_devices import register

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def registered(secure_client, secure_connector, alice_browser):
    """A securely registered device that has sent a message."""
    done = register(secure_client, alice_browser, secure_connector)
    assert secure_client.message(done["accessToken"], done["did"], {"t": 21}).status_code == 200
    return done


@pytest.fixture
def everything(connector, device_client, whitelist, owner, pki, registered):
    """At least one row of every model in the admin, made the way Gatehouse makes them."""
    whitelist(connector, "00000001")
    token = device_client.activate("00000001").content.decode()
    for value in (1, 2):
        assert device_client.write(f"myalias={value}", f"Token {token}").status_code == 204
    WhitelistImport.objects.create(connector=connector, created_by=owner, total=3)
    ApiToken.issue(owner, "laptop")
    Group.objects.create(name="Support")
    IngestMark.objects.create(consumer="ingest-1", entries="1-0")
    PairingGuess.objects.create(registration=Registration.objects.get(), user=owner, wrong=1)
    HubPolicy.objects.create(connector=connector, acts_as_hub=True)
    HubMember.objects.create(hub=SecureDevice.objects.get().device, user=owner)
    Client().post("/login/", {"username": "owner", "password": "wrong"})
    Client().post("/login/", {"username": "owner", "password": "owner-pass-123"})
    assert AccessAttempt.objects.exists() and AccessLog.objects.exists()
    # Written only with AXES_ENABLE_ACCESS_FAILURE_LOG, which Gatehouse leaves off.
    AccessFailureLog.objects.create(username="owner", ip_address="192.0.2.1", path_info="/login/")


def url_of(model) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def staff_who_may(action: str, model) -> Client:
    """A signed-in staff user whose only permission is `<action>_<model>`."""
    opts = model._meta
    user = User.objects.create_user(f"{action}-{opts.app_label}-{opts.model_name}", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(
            content_type=ContentType.objects.get_for_model(model),
            codename=f"{action}_{opts.model_name}",
        )
    )
    client = Client()
    client.force_login(user)
    return client


def every_action(model_admin, superuser) -> list[str]:
    """Each action the page knows, whoever it is offered to."""
    request = RequestFactory().get("/admin/")
    request.user = superuser
    names = set(model_admin.get_actions(request))
    names.update(name for name, _ in admin.site.actions)
    for action in model_admin.actions or []:
        names.add(action if isinstance(action, str) else action.__name__)
    return sorted(names)


def snapshot() -> dict:
    """Every row of every model in the admin, as stored."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in admin.site._registry
    }


def test_view_permission_alone_offers_no_admin_action_and_posting_one_changes_nothing(
    everything, admin_user
):
    registry = admin.site._registry
    viewers = {model: staff_who_may("view", model) for model in registry}
    walked = []
    for model, model_admin in registry.items():
        url = url_of(model)
        listing = viewers[model].get(url)
        assert listing.status_code == 200, url
        assert listing.context["action_form"] is None, f"{url} offers actions to a viewer"
        assert 'name="action"' not in listing.content.decode(), url

        actions = every_action(model_admin, admin_user)
        selected = [str(pk) for pk in model._default_manager.values_list("pk", flat=True)]
        assert selected or not actions, f"{url}: give `everything` a row so its actions are walked"
        for action in actions:
            before = snapshot()
            # Without "index": the path of actions that confirm first; with it, the other.
            for extra in ({}, {"index": "0"}):
                data = {"action": action, "_selected_action": selected, "post": "yes", **extra}
                response = viewers[model].post(url, data)
                assert response.status_code in (200, 302, 403), (url, action)
            assert snapshot() == before, f"{url} {action} changed something for a viewer"
            walked.append(f"{model._meta.label}.{action}")
    # The pages whose actions change what devices and people may do are among those walked.
    for action in (
        "certificates.IssuedCertificate.revoke_certificates",
        "devices.Device.revoke_devices",
        "devices.Device.reset_devices",
        "devices.DataPoint.delete_selected",
        "auth.User.grant_device_maker",
        "axes.AccessAttempt.cleanup_expired_attempts",
    ):
        assert action in walked


def test_a_viewer_cannot_revoke_a_certificate_and_staff_who_may_change_can(pki):
    issued = IssuedCertificate.objects.get(state=IssuedCertificate.ACTIVE)
    url = url_of(IssuedCertificate)
    data = {"action": "revoke_certificates", "_selected_action": [issued.pk]}

    viewer = staff_who_may("view", IssuedCertificate)
    assert "revoke_certificates" not in viewer.get(url).content.decode()
    assert viewer.post(url, data).status_code in (200, 302)
    issued.refresh_from_db()
    assert issued.state == IssuedCertificate.ACTIVE

    editor = staff_who_may("change", IssuedCertificate)
    assert "revoke_certificates" in editor.get(url).content.decode()
    assert editor.post(url, data).status_code == 302
    issued.refresh_from_db()
    assert issued.state == IssuedCertificate.REVOKED
    revoked = Event.objects.filter(kind=Event.CERTIFICATE).latest("pk")
    assert revoked.actor_name == "change-certificates-issuedcertificate"


@pytest.mark.parametrize("action", ["revoke_devices", "reset_devices"])
def test_a_viewer_cannot_revoke_or_reset_a_device(connector, device_client, whitelist, action):
    whitelist(connector, "00000001")
    device_client.activate("00000001")
    device = Device.objects.get()
    events = Event.objects.count()

    viewer = staff_who_may("view", Device)
    assert action not in viewer.get(url_of(Device)).content.decode()
    viewer.post(url_of(Device), {"action": action, "_selected_action": [device.pk]})

    device.refresh_from_db()
    assert device.status == Device.PROVISIONED
    assert Event.objects.count() == events
    # Staff who may change devices still can.
    editor = staff_who_may("change", Device)
    editor.post(url_of(Device), {"action": action, "_selected_action": [device.pk]})
    device.refresh_from_db()
    assert device.status != Device.PROVISIONED


@pytest.mark.parametrize("model", [SecureDevice, Registration])
def test_secure_devices_and_registrations_are_not_deleted_one_by_one_in_the_admin(
    admin_client, registered, secure_client, model
):
    row = model.objects.get()
    url = url_of(model)
    events = Event.objects.count()

    assert admin_client.get(f"{url}{row.pk}/delete/").status_code == 403
    assert admin_client.post(f"{url}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in admin_client.get(url).content.decode()
    admin_client.post(
        url, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )

    assert model.objects.filter(pk=row.pk).exists()
    assert Event.objects.count() == events
    # The device still authenticates as it did.
    message = secure_client.message(registered["accessToken"], registered["did"], {"t": 22})
    assert message.status_code == 200


def test_deleting_a_securely_registered_device_in_the_admin_still_works_and_is_logged(
    admin_client, registered
):
    device = SecureDevice.objects.get().device
    response = admin_client.post(f"{url_of(Device)}{device.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not SecureDevice.objects.exists()
    deleted = Event.objects.filter(kind=Event.DELETE, identity=device.identity).get()
    assert deleted.actor_name == "admin"


def test_bulk_deleting_data_points_leaves_a_delete_line_per_device_naming_the_admin(
    admin_client, connector, device_client, whitelist
):
    for identity in ("00000001", "00000002"):
        whitelist(connector, identity)
        token = device_client.activate(identity).content.decode()
        for value in range(3):
            device_client.write(f"myalias={value}", f"Token {token}")
    assert DataPoint.objects.count() == 6
    first = DataPoint.objects.filter(device__identity="00000001").values_list("pk", flat=True)
    second = DataPoint.objects.filter(device__identity="00000002").values_list("pk", flat=True)[:1]

    response = admin_client.post(
        url_of(DataPoint),
        {"action": "delete_selected", "_selected_action": [*first, *second], "post": "yes"},
    )

    assert response.status_code == 302
    assert DataPoint.objects.count() == 2
    lines = Event.objects.filter(kind=Event.DELETE).order_by("identity")
    assert [(line.connector_id, line.identity, line.reason) for line in lines] == [
        (connector.pk, "00000001", "3 data point(s) deleted by admin via admin"),
        (connector.pk, "00000002", "1 data point(s) deleted by admin via admin"),
    ]
    assert {line.actor_name for line in lines} == {"admin"}
    assert {line.actor.get_username() for line in lines} == {"admin"}


def test_deleting_a_message_in_the_admin_leaves_a_delete_line_naming_the_admin(
    admin_client, registered
):
    message = Message.objects.get()
    response = admin_client.post(f"{url_of(Message)}{message.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Message.objects.exists()
    deleted = Event.objects.get(kind=Event.DELETE)
    assert deleted.identity == message.device.identity
    assert deleted.connector_id == message.device.connector_id
    assert deleted.reason == "1 message(s) deleted by admin via admin"
    assert deleted.actor_name == "admin"


def test_deleting_an_import_record_in_the_admin_leaves_a_delete_line_naming_the_admin(
    admin_client, connector, owner
):
    record = WhitelistImport.objects.create(connector=connector, created_by=owner, total=3)
    response = admin_client.post(
        url_of(WhitelistImport),
        {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"},
    )

    assert response.status_code == 302
    assert not WhitelistImport.objects.exists()
    deleted = Event.objects.get(kind=Event.DELETE)
    assert (deleted.connector_id, deleted.identity) == (connector.pk, "")
    assert deleted.reason == "1 whitelist import(s) deleted by admin via admin"
    assert deleted.actor_name == "admin"


def test_deleting_an_access_attempt_names_the_admin_and_sign_in_history_is_not_deleted(
    admin_client, owner
):
    Client().post("/login/", {"username": "owner", "password": "wrong"})
    Client().post("/login/", {"username": "owner", "password": "owner-pass-123"})
    attempt = AccessAttempt.objects.get()
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    forgotten = Event.objects.get(identity="owner", reason__contains="forgotten")
    assert forgotten.kind == Event.DELETE
    assert forgotten.actor_name == "admin"

    entry = AccessLog.objects.first()
    response = admin_client.post(f"/admin/axes/accesslog/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert AccessLog.objects.filter(pk=entry.pk).exists()


SCHEMA_PAGES = ["/api/schema/", "/api/docs/"]


@pytest.mark.parametrize("path", SCHEMA_PAGES)
def test_the_api_schema_and_docs_are_refused_to_anonymous_callers(path):
    assert Client().get(path).status_code == 401


@pytest.mark.parametrize("path", SCHEMA_PAGES)
def test_the_api_schema_and_docs_are_refused_to_plain_users(end_user_client, end_user, path):
    assert end_user_client.get(path).status_code == 403
    browser = Client()
    browser.force_login(end_user)
    assert browser.get(path).status_code == 403


@pytest.mark.parametrize("path", SCHEMA_PAGES)
def test_device_makers_read_the_api_schema_and_docs_with_a_token_or_signed_in(
    api_client, owner, path
):
    by_token = api_client.get(path)
    assert by_token.status_code == 200
    browser = Client()
    browser.force_login(owner)
    assert browser.get(path).status_code == 200
    if path == "/api/schema/":
        assert b"Gatehouse management API" in by_token.content
