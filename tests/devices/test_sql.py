"""Each hand-written statement of devices/sql.py, run against the database (SQLite by
default, PostgreSQL with DATABASE_URL): what it writes or finds, and that its
column lists match the models."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import Event
from connectors.models import Connector
from devices import services, sql
from devices.models import Credential, DataPoint, Device

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(connector):
    return services.whitelist_device(connector, "00000001")


def provisioned(connector, identity="00000002") -> tuple[Device, str]:
    services.whitelist_device(connector, identity)
    token = services.activate_device(connector, identity, None, "127.0.0.1")
    return Device.objects.get(connector=connector, identity=identity), token


def run(statement, params):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def event_values(connector, reason="sql test"):
    return services.event_row(connection, connector.pk, "00000001", Event.WRITE, reason, "::1")


def test_insert_event_writes_every_column(connector):
    run(sql.INSERT_EVENT, event_values(connector))
    event = Event.objects.get(reason="sql test")
    assert (event.connector_id, event.identity, event.kind, event.source_ip) == (
        connector.pk, "00000001", Event.WRITE, "::1",
    )  # fmt: skip
    assert event.actor is None and event.actor_name == ""


def test_insert_many_events_keeps_their_order(connector):
    rows = [event_values(connector, f"many {n}") for n in range(3)]
    run(sql.insert_events(3), [value for row in rows for value in row])
    stored = Event.objects.filter(reason__startswith="many ").order_by("id")
    assert list(stored.values_list("reason", flat=True)) == ["many 0", "many 1", "many 2"]


def test_insert_data_point_and_many_points(device):
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    run(sql.INSERT_DATA_POINT, [device.pk, "myalias", "1", at])
    run(sql.insert_data_points(2), [device.pk, "myalias", "2", at, device.pk, "other", "3", at])
    stored = DataPoint.objects.filter(device=device).order_by("id")
    assert list(stored.values_list("alias", "value")) == [
        ("myalias", "1"), ("myalias", "2"), ("other", "3"),
    ]  # fmt: skip


@pytest.mark.postgres
def test_points_and_their_event_in_one_statement(device, connector):
    at = timezone.now()
    run(
        sql.insert_data_points_and_event(1),
        [device.pk, "myalias", "4", at, *event_values(connector, "one statement")],
    )
    assert DataPoint.objects.get(device=device).value == "4"
    assert Event.objects.filter(reason="one statement").count() == 1


def test_touch_device(device):
    at = timezone.now()
    run(sql.TOUCH_DEVICE, [connection.ops.adapt_datetimefield_value(at), "10.0.0.9", device.pk])
    device.refresh_from_db()
    assert (device.last_seen_at, device.last_ip) == (at, "10.0.0.9")


def test_device_by_token_finds_only_an_active_token_of_a_provisioned_device(connector):
    device, token = provisioned(connector)
    params = [services.hash_token(token), Connector.TOKEN, Credential.ACTIVE, connector.pk]
    [found] = Device.objects.raw(sql.DEVICE_BY_TOKEN, [*params, Device.PROVISIONED])
    connector.refresh_from_db()  # defining its resource bumped the revision
    assert (found.pk, found.resources_revision) == (device.pk, connector.resources_revision)
    services.revoke_device(device)
    assert list(Device.objects.raw(sql.DEVICE_BY_TOKEN, [*params, Device.PROVISIONED])) == []


def test_device_by_version_finds_only_the_current_version(connector):
    device, _ = provisioned(connector)
    params = [device.pk, connector.pk, Device.PROVISIONED]
    assert [d.pk for d in Device.objects.raw(sql.DEVICE_BY_VERSION, [*params, 1])] == [device.pk]
    assert list(Device.objects.raw(sql.DEVICE_BY_VERSION, [*params, 2])) == []


def test_connector_by_id(connector):
    [found] = Connector.objects.raw(sql.CONNECTOR_BY_ID, [connector.pk])
    assert found == connector and found.identity_format == connector.identity_format


def test_claim_takes_a_whitelisted_row_inside_its_window_once(device, connector):
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [
        Device.PROVISIONED, Connector.TOKEN, at, at, at, "::1",
        connector.pk, device.identity, Device.WHITELISTED, at,
    ]  # fmt: skip
    assert run(sql.CLAIM, params) == [(device.pk,)]
    assert run(sql.CLAIM, params) == []
    device.refresh_from_db()
    assert (device.status, device.credential_version, device.last_ip) == (
        Device.PROVISIONED, 1, "::1",
    )  # fmt: skip


def test_insert_credential(device):
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    values = [device.pk, Connector.TOKEN, Credential.ACTIVE, "ab" * 32, "", at, "", "", "", ""]
    run(sql.INSERT_CREDENTIAL, values)
    credential = device.credentials.get()
    assert (credential.kind, credential.token_hash, credential.password_hash) == (
        Connector.TOKEN, "ab" * 32, "",
    )  # fmt: skip


@pytest.mark.parametrize("claimable", [True, False])
def test_activate_claims_issues_and_logs_or_changes_nothing(device, connector, claimable):
    now = timezone.now()
    if not claimable:
        Device.objects.filter(pk=device.pk).update(activation_expires_at=now - timedelta(1))
    event = services.event_row(
        connection, connector.pk, device.identity, Event.PROVISION, "token issued", "::1", now
    )
    found = sql.activate(
        connector.pk, Connector.TOKEN, device.identity, now, "::1",
        token_hash="cd" * 32, password_hash="", event=event,
    )  # fmt: skip
    if claimable:
        assert found == device.pk
        assert device.credentials.get().token_hash == "cd" * 32
        assert Event.objects.filter(kind=Event.PROVISION, identity=device.identity).count() == 1
    else:
        assert found is None
        assert not device.credentials.exists()
        assert not Event.objects.filter(kind=Event.PROVISION).exists()


# --- CSV imports and the ingest (PostgreSQL) ----------------------------------------------


def whitelist_template(connector):
    return Device(connector=connector, status=Device.WHITELISTED)


@pytest.mark.postgres
def test_whitelisted_identities_finds_the_connectors_own(connector, device, make_connector):
    other = make_connector()
    services.whitelist_device(other, "00000002")
    found = run(sql.WHITELISTED_IDENTITIES, [connector.pk, ["00000001", "00000002", "x"]])
    assert found == [("00000001",)]


@pytest.mark.postgres
def test_an_import_stage_is_made_filled_written_emptied_and_dropped(connector, device):
    stage = sql.import_stage("test", whitelist_template(connector), connection)
    run(sql.CHECK_CONSTRAINTS_NOW, [])
    run(stage.drop, [])
    run(stage.create, [])
    at = timezone.now()
    pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"
    with connection.cursor() as cursor, cursor.copy(stage.copy_rows) as copy:
        copy.write_row((2, "00000001", "[]", None, None, None, None, None))  # whitelisted already
        copy.write_row((3, "00000003", '[{"name": "g", "value": "1"}]', None, None, None, None,
                        None))  # fmt: skip
    assert run(stage.insert, stage.params) == [(2, "00000001")]
    created = Device.objects.get(connector=connector, identity="00000003")
    assert (created.status, created.tags) == (Device.WHITELISTED, [{"name": "g", "value": "1"}])
    run(stage.truncate, [])
    with connection.cursor() as cursor, cursor.copy(stage.copy_rows) as copy:
        copy.write_row((4, "00000004", "[]", pem, "ab" * 32, "01", at, at + timedelta(days=1)))
    assert run(stage.insert_pinned, stage.pinned_params) == []
    pinned = Credential.objects.get(device__identity="00000004")
    assert (pinned.kind, pinned.state, pinned.fingerprint, pinned.serial) == (
        Connector.CERTIFICATE, Credential.INACTIVE, "ab" * 32, "01",
    )  # fmt: skip
    run(stage.drop, [])
    assert run("SELECT to_regclass('whitelist_import_test')", []) == [(None,)]


@pytest.mark.postgres
def test_an_import_copies_rows_without_certificates_straight_into_devices(connector):
    stage = sql.import_stage("direct", whitelist_template(connector), connection)
    with connection.cursor() as cursor, cursor.copy(stage.copy_devices) as copy:
        copy.write_row(("00000005", "[]", *stage.params))
    device = Device.objects.get(identity="00000005")
    assert (device.connector_id, device.status) == (connector.pk, Device.WHITELISTED)


@pytest.mark.postgres
def test_the_ingest_copies_data_points_and_events(connector, device):
    at = timezone.now()
    with connection.cursor() as cursor:
        with cursor.copy(sql.COPY_DATA_POINTS) as copy:
            copy.write_row((device.pk, "myalias", "7", at))
        with cursor.copy(sql.COPY_EVENTS) as copy:
            copy.write_row(event_values(connector, "copied"))
    assert DataPoint.objects.get(device=device).value == "7"
    assert Event.objects.get(reason="copied").identity == "00000001"
