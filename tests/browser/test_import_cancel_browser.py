"""Cancelling a CSV import from its page while it waits and while it runs, at laptop
and phone sizes."""

import pytest
from playwright.sync_api import expect

from audit.models import Event
from devices import tasks
from devices.imports.records import GivenUp
from devices.imports.run import ImportRun
from devices.models import Device, WhitelistImport
from tests.browser.conftest import LAPTOP, PHONE
from tests.browser.test_console_browser import fits_the_viewport, keep_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["laptop", "phone"])
ROWS = 40


@SIZES
def test_a_maker_watches_an_import_wait_then_run_and_cancels_it(
    signed_in_page, connector, tmp_path, settings, monkeypatch, size
):
    settings.MEDIA_ROOT = tmp_path / "media"
    # Larger than what runs inline, and its task is held back: the import stays
    # pending until the test plays the worker.
    settings.IMPORT_INLINE_MAX_BYTES = 0
    sent = []
    monkeypatch.setattr(tasks.run_whitelist_import, "delay", sent.append)
    csv_file = tmp_path / "identities.csv"
    csv_file.write_text(
        "ID,TLS Client Certificate,Tags\n" + "".join(f"{n:08d},,\n" for n in range(1, ROWS + 1))
    )
    page = signed_in_page
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/imports/new/")
    page.set_input_files("#id_file", str(csv_file))
    page.click("text=Upload CSV")

    status = page.locator("#import-status")
    expect(status).to_have_text("Pending")
    expect(page.locator("#import-summary")).to_contain_text("Working…")
    record = WhitelistImport.objects.get()
    assert sent == [record.pk]
    fits_the_viewport(page)

    # A worker claims it and checks every row; the open page follows its progress.
    WhitelistImport.objects.filter(pk=record.pk).update(
        status=WhitelistImport.RUNNING, attempts=1, total=ROWS
    )
    record.refresh_from_db()
    run = ImportRun(record)
    try:
        run._validate()
        expect(status).to_have_text("Running")
        expect(page.locator("#import-processed")).to_have_text(str(ROWS))
        expect(page.locator("#import-progress")).to_have_attribute("value", str(ROWS))
        fits_the_viewport(page)
        keep_screenshot(page, "import-running")

        page.click("#import-cancel button")

        expect(page.locator("ul.messages")).to_contain_text(
            f"Import {record.pk} cancelled: nothing was written."
        )
        expect(status).to_have_text("Cancelled")
        expect(page.locator("#import-summary")).to_have_text(
            "Cancelled before it wrote: nothing was whitelisted."
        )
        expect(page.locator("#import-cancel")).to_have_count(0)
        fits_the_viewport(page)
        keep_screenshot(page, "import-cancelled")
        # The worker's last step finds the import cancelled and writes nothing.
        with pytest.raises(GivenUp):
            run._write()
    finally:
        run.close(keep_upload=True)
    record.refresh_from_db()
    assert (record.status, record.created) == (WhitelistImport.CANCELLED, 0)
    assert not Device.objects.exists()
    assert Event.objects.filter(
        kind=Event.IMPORT,
        reason=f"CSV import {record.pk} cancelled by owner via portal: nothing written",
    ).exists()
