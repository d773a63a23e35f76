"""Following a CSV import from its page through its steps to done, and cancelling
one while it waits and while it runs, at laptop and phone sizes."""

import pytest
from django.utils import timezone
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
IDENTITIES = "ID,TLS Client Certificate,Tags\n" + "".join(
    f"{n:08d},,\n" for n in range(1, ROWS + 1)
)


def upload(page, size, connector, csv_file, rows: str = IDENTITIES) -> None:
    """Write `rows` to `csv_file` and upload it on the connector's import page."""
    csv_file.write_text(rows)
    page.set_viewport_size(size)
    page.goto(f"/connectors/{connector.pk}/imports/new/")
    page.set_input_files("#id_file", str(csv_file))
    page.click("text=Upload CSV")


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
    page = signed_in_page
    upload(page, size, connector, tmp_path / "identities.csv")

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
        expect(page.locator("#import-phase")).to_contain_text("Checking rows")
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


def step_of(page, phase: str):
    return page.locator(f'#import-steps li[data-phase="{phase}"]')


@SIZES
def test_a_maker_follows_an_import_through_its_steps_to_done(
    signed_in_page, connector, tmp_path, settings, monkeypatch, size
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMPORT_INLINE_MAX_BYTES = 0
    monkeypatch.setattr(tasks.run_whitelist_import, "delay", lambda pk: None)
    page = signed_in_page
    upload(page, size, connector, tmp_path / "north <site> #7.csv")

    phase = page.locator("#import-phase")
    bar = page.locator("#import-progress")
    expect(page.locator("#import-file-name")).to_have_text("north <site> #7.csv")
    expect(phase).to_have_text("Waiting for a worker to start it.")
    record = WhitelistImport.objects.get()

    # A worker claims it and checks every row.
    WhitelistImport.objects.filter(pk=record.pk).update(
        status=WhitelistImport.RUNNING,
        attempts=1,
        total=ROWS,
        phase=WhitelistImport.CHECKING,
        phase_started_at=timezone.now(),
    )
    record.refresh_from_db()
    run = ImportRun(record)
    try:
        run._validate()
        expect(phase).to_contain_text(f"Step 1 of 3: Checking rows: {ROWS} of {ROWS} rows")
        expect(step_of(page, "checking")).to_have_attribute("data-state", "current")
        expect(bar).to_have_attribute("value", str(ROWS))
        fits_the_viewport(page)

        # Adding devices: the bar starts again, at no device added.
        run.phase, run.phase_started_at = WhitelistImport.WRITING, timezone.now()
        run._progress(WhitelistImport.WRITING, 0)
        expect(phase).to_contain_text(f"Step 2 of 3: Adding devices: 0 of {ROWS} devices")
        expect(bar).to_have_attribute("value", "0")
        expect(bar).to_have_attribute("max", str(ROWS))
        expect(step_of(page, "checking")).to_have_attribute("data-state", "done")
        expect(step_of(page, "writing")).to_have_attribute("data-state", "current")
        run._progress(WhitelistImport.WRITING, ROWS // 2)
        expect(phase).to_contain_text(f"{ROWS // 2} of {ROWS} devices")
        expect(page.locator("#import-created")).to_have_text(str(ROWS // 2))
        fits_the_viewport(page)
        keep_screenshot(page, "import-adding-devices")

        # Saving the result, as the writer notes it inside its transaction.
        run._progress(WhitelistImport.FINISHING, ROWS)
        expect(phase).to_contain_text("Step 3 of 3: Saving the result")
        expect(step_of(page, "finishing")).to_have_attribute("data-state", "current")
        fits_the_viewport(page)

        run._write()
    finally:
        run.close()
    expect(page.locator("#import-status")).to_have_text("Done")
    expect(page.locator("#import-summary")).to_have_text(f"Done: {ROWS} devices whitelisted.")
    for key in ("checking", "writing", "finishing"):
        expect(step_of(page, key)).to_have_attribute("data-state", "done")
    expect(bar).to_have_attribute("value", str(ROWS))
    fits_the_viewport(page)
    assert Device.objects.filter(connector=connector).count() == ROWS


@SIZES
def test_a_maker_imports_the_good_rows_of_a_refused_file_in_one_click(
    signed_in_page, connector, tmp_path, settings, size
):
    settings.MEDIA_ROOT = tmp_path / "media"
    page = signed_in_page
    upload(
        page, size, connector, tmp_path / "factory line 7.csv",
        "ID,TLS Client Certificate,Tags\n00000001,,\n12ab,,\n00000003,,\n",
    )  # fmt: skip

    expect(page.locator("#import-status")).to_have_text("Failed")
    expect(page.locator("#import-errors")).to_contain_text(
        "The ID cell must be exactly 8 decimal digits; this one holds non-digits."
    )
    expect(page.locator('#import-steps li[data-phase="checking"]')).to_have_attribute(
        "data-state", "stopped"
    )
    fits_the_viewport(page)
    keep_screenshot(page, "import-refused")
    expect(page.locator("#import-good-rows button")).to_have_text("Import the 2 good rows")
    page.click("#import-good-rows button")

    expect(page.locator("ul.messages")).to_contain_text("started with the good rows of import")
    restart = WhitelistImport.objects.order_by("-pk").first()
    assert restart.retry_of_id is not None
    expect(page.locator("ul.messages")).to_contain_text(
        f"Import {restart.pk} started with the good rows of import {restart.retry_of_id}."
    )
    expect(page.locator("#import-status")).to_have_text("Done")
    expect(page.locator("#import-file-name")).to_have_text("factory line 7.csv")
    expect(page.locator("#import-summary")).to_have_text(
        "Done: 2 devices whitelisted, 1 bad row skipped."
    )
    fits_the_viewport(page)
    assert Device.objects.filter(connector=connector).count() == 2
