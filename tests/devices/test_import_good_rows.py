"""Importing the good rows of an import that refused its file for bad rows: one
POST from its page, once, for makers of that connector only."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from audit.models import Event
from devices import imports, services, tasks
from devices.models import Device, WhitelistImport

pytestmark = pytest.mark.django_db

THREE_GOOD_ONE_BAD = "ID,TLS Client Certificate,Tags\n00000001,,\n12ab,,\n00000003,,\n00000004,,\n"
BUTTON = "Import the 3 good rows"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, connector, text: str = THREE_GOOD_ONE_BAD, name="north <site>.csv", **fields):
    return client.post(
        f"/connectors/{connector.pk}/imports/new/",
        {
            "file": SimpleUploadedFile(name, text.encode(), content_type="text/csv"),
            "on_error": "abort",
            **fields,
        },
    )


def page_url(record) -> str:
    return f"/connectors/{record.connector_id}/imports/{record.pk}/"


def good_rows_url(record) -> str:
    return f"{page_url(record)}good-rows/"


def refused_import(client, connector) -> WhitelistImport:
    upload(client, connector)
    record = WhitelistImport.objects.get()
    assert (record.status, record.error_count, record.created) == ("failed", 1, 0)
    return record


def test_a_refused_import_offers_its_good_rows_and_one_click_imports_them(owner_client, connector):
    record = refused_import(owner_client, connector)
    assert record.file.storage.exists(record.file.name)
    page = owner_client.get(page_url(record)).content.decode()
    assert f'action="{good_rows_url(record)}"' in page
    assert BUTTON in page
    assert "csrfmiddlewaretoken" in page[page.index('id="import-good-rows"') :]

    response = owner_client.post(good_rows_url(record), follow=True)
    restart = WhitelistImport.objects.exclude(pk=record.pk).get()
    assert response.redirect_chain == [(page_url(restart), 302)]
    text = response.content.decode()
    assert f"Import {restart.pk} started with the good rows of import {record.pk}." in text
    assert f'The good rows of <a href="{page_url(record)}">import {record.pk}</a>' in text
    assert "north &lt;site&gt;.csv" in text
    assert (restart.status, restart.on_error, restart.created, restart.error_count) == (
        "done",
        "skip",
        3,
        1,
    )
    assert (restart.retry_of_id, restart.original_name) == (record.pk, record.original_name)
    assert restart.created_by.username == "owner"
    assert sorted(Device.objects.values_list("identity", flat=True)) == [
        "00000001",
        "00000003",
        "00000004",
    ]
    # Each import has its own copy, and the first one's is gone once the restart has it.
    assert not record.file.storage.exists(record.file.name)
    assert not restart.file.storage.exists(restart.file.name)
    assert Event.objects.filter(
        kind=Event.IMPORT,
        reason__startswith=f"CSV import {restart.pk} started",
        reason__contains=f"on error: skip, the good rows of import {record.pk}) by owner",
    ).exists()
    # The first import's page now points at the restart instead of offering it again.
    page = owner_client.get(page_url(record)).content.decode()
    assert BUTTON not in page
    assert f'being imported as <a href="{page_url(restart)}">import {restart.pk}</a>' in page


def test_a_second_click_starts_nothing_and_lands_on_the_first_restart(owner_client, connector):
    record = refused_import(owner_client, connector)
    owner_client.post(good_rows_url(record))
    restart = WhitelistImport.objects.get(retry_of=record)
    events = Event.objects.count()

    response = owner_client.post(good_rows_url(record), follow=True)
    assert response.redirect_chain == [(page_url(restart), 302)]
    assert (
        f"Import {record.pk} was already restarted with its good rows as import {restart.pk}. "
        "Nothing new was started." in response.content.decode()
    )
    assert WhitelistImport.objects.count() == 2
    assert Device.objects.count() == 3
    assert Event.objects.count() == events


def test_two_restarts_at_once_make_one_import(owner_client, connector):
    """The link is unique: a restart that loses the race is refused and keeps no file."""
    record = refused_import(owner_client, connector)
    first = imports.import_good_rows(record)
    with pytest.raises(imports.AlreadyRestarted) as refused:
        imports.start_import(
            connector,
            SimpleUploadedFile("again.csv", THREE_GOOD_ONE_BAD.encode()),
            on_error="skip",
            retry_of=record,
        )
    assert refused.value.restart == first
    assert WhitelistImport.objects.count() == 2
    stored = sorted(p.name for p in (record.file.storage.base_location / "imports").iterdir())
    assert not any(name.endswith(".csv") and "errors" not in name for name in stored)


def test_restarting_needs_a_post_with_a_csrf_token(owner, connector):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    record = refused_import(browser_without_checks(owner), connector)
    assert browser.get(good_rows_url(record)).status_code == 405
    assert browser.post(good_rows_url(record)).status_code == 403
    assert not WhitelistImport.objects.filter(retry_of=record).exists()
    assert record.file.storage.exists(record.file.name)


def browser_without_checks(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_only_makers_of_the_connector_may_restart(
    owner_client, other_browser, end_user_browser, connector, settings
):
    record = refused_import(owner_client, connector)
    assert other_browser.post(good_rows_url(record)).status_code == 404
    assert end_user_browser.post(good_rows_url(record)).status_code == 403
    assert Client().post(good_rows_url(record)).status_code == 302  # to sign in
    assert WhitelistImport.objects.count() == 1
    assert record.file.storage.exists(record.file.name)


def test_without_its_upload_the_page_says_how_to_upload_again(owner_client, connector):
    record = refused_import(owner_client, connector)
    record.file.storage.delete(record.file.name)
    page = owner_client.get(page_url(record)).content.decode()
    assert BUTTON not in page
    assert "The uploaded file is no longer kept" in page
    assert f'<a href="/connectors/{connector.pk}/imports/new/">upload the file again</a>' in page

    response = owner_client.post(good_rows_url(record), follow=True)
    assert response.redirect_chain == [(page_url(record), 302)]
    assert "Its file is no longer kept; upload it again and choose to skip bad rows." in (
        response.content.decode()
    )
    assert WhitelistImport.objects.count() == 1


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("ID,TLS Client Certificate,Tags\n00000001,,\n", {}),  # done
        (THREE_GOOD_ONE_BAD, {"on_error": "skip"}),  # done, its bad row skipped
        (THREE_GOOD_ONE_BAD, {"dry_run": "on"}),  # a dry run
        ("ID,TLS Client Certificate,Tags\n12ab,,\n", {}),  # no good row at all
        ('ID,TLS Client Certificate,Tags\n00000001,,"[]"x\n', {}),  # a broken file
    ],
)
def test_only_an_import_refused_for_bad_rows_can_be_restarted(
    owner_client, connector, text, options
):
    upload(owner_client, connector, text, **options)
    record = WhitelistImport.objects.get()
    assert "good-rows" not in owner_client.get(page_url(record)).content.decode()
    response = owner_client.post(good_rows_url(record), follow=True)
    assert response.redirect_chain == [(page_url(record), 302)]
    assert (
        "Only an import that failed for bad rows can be restarted with its good rows."
        in response.content.decode()
    )
    assert WhitelistImport.objects.count() == 1


def test_a_file_with_a_private_key_is_not_kept_for_a_restart(owner_client, connector):
    text = (
        THREE_GOOD_ONE_BAD
        + '00000005,"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",\n'
    )
    upload(owner_client, connector, text)
    record = WhitelistImport.objects.get()
    assert record.status == "failed"
    assert not record.file.storage.exists(record.file.name)
    assert (
        "The uploaded file is no longer kept" in owner_client.get(page_url(record)).content.decode()
    )


def test_the_sweep_removes_a_kept_upload_once_its_time_is_up(owner_client, connector, settings):
    record = refused_import(owner_client, connector)
    assert tasks.fail_stalled_imports()["uploads removed"] == 0
    assert record.file.storage.exists(record.file.name)
    WhitelistImport.objects.filter(pk=record.pk).update(
        finished_at=timezone.now()
        - timedelta(seconds=settings.IMPORT_KEEP_FAILED_UPLOAD_SECONDS + 1)
    )
    assert tasks.fail_stalled_imports()["uploads removed"] == 1
    assert not record.file.storage.exists(record.file.name)
    with pytest.raises(imports.UploadGone):
        imports.import_good_rows(record, actor=services.Actor(record.created_by, "portal"))
