"""Cancelling a CSV import from its page: pending, running, and already ended."""

import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection as db_connection

from audit.models import Event
from devices import imports, services, tasks
from devices.imports.records import GivenUp, record_progress
from devices.imports.run import ImportRun
from devices.models import Device, WhitelistImport

pytestmark = pytest.mark.django_db

GOOD_CSV = "ID,TLS Client Certificate,Tags\n00000001,,\n00000002,,\n00000003,,\n"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, connector, text: str):
    return client.post(
        f"/connectors/{connector.pk}/imports/new/",
        {
            "file": SimpleUploadedFile("identities.csv", text.encode(), content_type="text/csv"),
            "on_error": "abort",
        },
    )


def cancel_url(record) -> str:
    return f"/connectors/{record.connector_id}/imports/{record.pk}/cancel/"


def page_url(record) -> str:
    return f"/connectors/{record.connector_id}/imports/{record.pk}/"


def cancel_events():
    return Event.objects.filter(kind=Event.IMPORT, reason__contains="cancelled")


def test_a_maker_cancels_a_pending_import_and_its_task_then_does_nothing(
    owner_client, connector, settings
):
    # Larger than what runs inline: the import waits for a worker (none runs here).
    settings.IMPORT_INLINE_MAX_BYTES = 0
    response = upload(owner_client, connector, GOOD_CSV)
    record = WhitelistImport.objects.get()
    assert record.status == WhitelistImport.PENDING
    page = owner_client.get(response["Location"]).content.decode()
    assert f'action="{cancel_url(record)}"' in page
    assert "Cancel the import" in page

    response = owner_client.post(cancel_url(record), follow=True)
    assert response.redirect_chain == [(page_url(record), 302)]
    text = response.content.decode()
    assert f"Import {record.pk} cancelled: nothing was written." in text
    assert 'data-status="cancelled">Cancelled</span>' in text
    assert "Cancelled before it wrote: nothing was whitelisted." in text
    assert "Cancel the import" not in text
    record.refresh_from_db()
    assert (record.status, record.created) == (WhitelistImport.CANCELLED, 0)
    assert record.finished_at is not None
    assert not record.file.storage.exists(record.file.name)
    event = cancel_events().get()
    assert event.reason == f"CSV import {record.pk} cancelled by owner via portal: nothing written"
    assert event.actor_name == "owner"
    progress = owner_client.get(f"{page_url(record)}progress").json()
    assert (progress["status"], progress["finished"]) == ("cancelled", True)

    # The worker's task arrives after all: the import is not pending, so it does nothing.
    tasks.run_whitelist_import(record.pk)
    record.refresh_from_db()
    assert record.status == WhitelistImport.CANCELLED
    assert not Device.objects.exists()


def stored_running(connector, text: str) -> WhitelistImport:
    """An import a worker has claimed (its first run)."""
    record = WhitelistImport(connector=connector, status=WhitelistImport.RUNNING, attempts=1)
    record.file.save(f"{connector.pk}-upload.csv", ContentFile(text.encode()), save=False)
    record.save()
    return record


def test_a_running_import_stops_at_its_next_update_and_writes_nothing(owner, connector):
    record = stored_running(connector, GOOD_CSV)
    run = ImportRun(record)
    try:
        run._validate()  # every row read, checked and staged; then its maker cancels
        assert imports.cancel_import(record, actor=services.Actor(owner, "portal"))
        with pytest.raises(GivenUp):
            record_progress(record.pk, record.attempts, processed=3)
        with pytest.raises(GivenUp):
            run._write()
    finally:
        run.close(keep_upload=True)
    assert not Device.objects.exists()
    record.refresh_from_db()
    assert (record.status, record.created) == (WhitelistImport.CANCELLED, 0)
    assert not record.file.storage.exists(record.file.name)
    # One line: who cancelled it; the run that gave up logs nothing.
    assert list(Event.objects.filter(kind=Event.IMPORT).values_list("reason", flat=True)) == [
        f"CSV import {record.pk} cancelled by owner via portal: nothing written"
    ]


@pytest.mark.parametrize(
    "text, status, created",
    [(GOOD_CSV, WhitelistImport.DONE, 3), (GOOD_CSV + "12ab,,\n", WhitelistImport.FAILED, 0)],
)
def test_cancelling_an_ended_import_is_refused_and_changes_nothing(
    owner_client, connector, text, status, created
):
    upload(owner_client, connector, text)  # small: runs to its end at once
    record = WhitelistImport.objects.get()
    assert record.status == status
    page = owner_client.get(page_url(record)).content.decode()
    assert "Cancel the import" not in page
    before = WhitelistImport.objects.values().get(pk=record.pk)

    response = owner_client.post(cancel_url(record), follow=True)

    assert response.redirect_chain == [(page_url(record), 302)]
    assert (
        f"Import {record.pk} had already ended ({status}): nothing was cancelled."
        in response.content.decode()
    )
    assert WhitelistImport.objects.values().get(pk=record.pk) == before
    assert Device.objects.count() == created
    assert not cancel_events().exists()


def test_another_maker_gets_a_404_and_the_import_goes_on(other_browser, owner, connector):
    record = stored_running(connector, GOOD_CSV)
    assert other_browser.post(cancel_url(record)).status_code == 404
    record.refresh_from_db()
    assert record.status == WhitelistImport.RUNNING
    assert record.file.storage.exists(record.file.name)
    assert not cancel_events().exists()


def test_cancel_takes_only_a_post_and_only_under_its_own_connector(
    owner_client, connector, make_connector
):
    record = stored_running(connector, GOOD_CSV)
    assert owner_client.get(cancel_url(record)).status_code == 405
    other = make_connector()
    response = owner_client.post(f"/connectors/{other.pk}/imports/{record.pk}/cancel/")
    assert response.status_code == 404
    assert (
        owner_client.post(f"/connectors/{connector.pk}/imports/999999/cancel/").status_code == 404
    )
    record.refresh_from_db()
    assert record.status == WhitelistImport.RUNNING


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_an_import_cancelled_while_it_runs_writes_nothing(owner, connector, settings):
    settings.IMPORT_BATCH_SIZE = 1
    rows = 2000
    text = "ID,TLS Client Certificate,Tags\n" + "".join(f"{n:08d},,\n" for n in range(1, rows + 1))
    record = WhitelistImport(connector=connector)
    record.file.save(f"{connector.pk}-upload.csv", ContentFile(text.encode()), save=False)
    record.save()
    ended, failures = [], []

    def worker():
        try:
            ended.append(imports.run_import(record.pk))
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            db_connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    deadline = time.monotonic() + 60
    while not WhitelistImport.objects.filter(pk=record.pk, processed__gte=1).exists():
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.005)
    cancelled = imports.cancel_import(record, actor=services.Actor(owner, "portal"))
    thread.join(120)
    assert not thread.is_alive() and not failures
    assert cancelled
    record.refresh_from_db()
    assert (record.status, record.created) == (WhitelistImport.CANCELLED, 0)
    assert 1 <= record.processed < rows
    assert ended[0].status == WhitelistImport.CANCELLED
    assert not Device.objects.exists()
    assert cancel_events().count() == 1
