"""An import's steps as its page shows them: checking rows, adding devices, saving
the result, each with its count, rate and time left; and the file's own name."""

import re
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from devices import imports
from devices.imports.run import ImportRun
from devices.imports.start import display_name
from devices.models import Device, WhitelistImport

pytestmark = pytest.mark.django_db

HEADER = "ID,TLS Client Certificate,Tags\n"
FIVE_ROWS = HEADER + "".join(f"{n:08d},,\n" for n in range(1, 6))


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def claimed(connector, text: str, **fields) -> WhitelistImport:
    """An import a worker has just claimed, as `run_import` leaves it."""
    record = WhitelistImport(
        connector=connector,
        status=WhitelistImport.RUNNING,
        attempts=1,
        phase=WhitelistImport.CHECKING,
        phase_started_at=timezone.now(),
        **fields,
    )
    record.file.save(f"{connector.pk}-upload.csv", ContentFile(text.encode()), save=False)
    record.save()
    return record


def progress_url(record) -> str:
    return f"/connectors/{record.connector_id}/imports/{record.pk}/progress"


def followed(client, record, **options) -> list[dict]:
    """Run `record` to its end, reading its progress as a poller would at each update."""
    run = ImportRun(record)
    seen = []
    settle, progress = run._settle, run._progress

    def look():
        seen.append(client.get(progress_url(record)).json())

    def settle_and_look(batch):
        settle(batch)
        look()

    def progress_and_look(phase, done):
        progress(phase, done)
        look()

    run._settle, run._progress = settle_and_look, progress_and_look
    try:
        run.execute()
    finally:
        run.close()
    look()
    return seen


def test_an_import_goes_through_its_steps_with_a_bar_for_each(owner_client, connector, settings):
    settings.IMPORT_BATCH_SIZE = 2
    record = claimed(connector, FIVE_ROWS)
    seen = followed(owner_client, record)

    phases = [state["phase"] for state in seen]
    order = [WhitelistImport.CHECKING, WhitelistImport.WRITING, WhitelistImport.FINISHING]
    assert sorted(set(phases[:-1]), key=order.index) == order
    assert phases[:-1] == sorted(phases[:-1], key=order.index)
    checking = [state for state in seen if state["phase"] == "checking"]
    assert [state["bar_value"] for state in checking] == [2, 4, 5]
    assert {state["bar_max"] for state in checking} == {5}
    assert checking[0]["phase_text"].startswith("Step 1 of 3: Checking rows: 2 of 5 rows")
    writing = [state for state in seen if state["phase"] == "writing"]
    # The bar starts again for the devices: never full while none was added.
    assert writing[0]["bar_value"] == writing[0]["created"] == 0
    assert writing[0]["phase_text"].startswith("Step 2 of 3: Adding devices: 0 of 5 devices")
    assert all(state["bar_max"] == 5 for state in writing)
    assert [state["bar_value"] for state in writing] == sorted(s["bar_value"] for s in writing)
    finishing = [state for state in seen if state["phase"] == "finishing"]
    assert finishing[0]["phase_text"].startswith(
        "Step 3 of 3: Saving the result: making the 5 new devices visible"
    )
    assert finishing[0]["bar_value"] is None
    assert [step["state"] for step in finishing[0]["phases"]] == ["done", "done", "current"]

    end = seen[-1]
    assert (end["status"], end["created"], end["bar_value"], end["bar_max"]) == ("done", 5, 5, 5)
    assert [step["state"] for step in end["phases"]] == ["done", "done", "done"]
    record.refresh_from_db()
    assert (record.phase, record.phase_done, record.phase_total) == ("finishing", 5, 5)
    assert Device.objects.filter(connector=connector).count() == 5


def test_an_import_that_aborts_on_a_bad_row_stops_after_checking(owner_client, connector):
    record = claimed(connector, FIVE_ROWS + "12ab,,\n")
    seen = followed(owner_client, record)
    assert {state["phase"] for state in seen} == {"checking"}
    assert [step["state"] for step in seen[-1]["phases"]] == ["stopped", "skipped", "skipped"]
    record.refresh_from_db()
    assert (record.status, record.phase, record.phase_done) == ("failed", "checking", 6)


def test_a_dry_run_has_one_step(owner_client, connector):
    record = claimed(connector, FIVE_ROWS, dry_run=True)
    seen = followed(owner_client, record)
    assert seen[0]["phase_text"].startswith("Step 1 of 1: Checking rows: 5 of 5 rows")
    assert [step["key"] for step in seen[-1]["phases"]] == ["checking"]


def test_the_running_step_shows_its_rate_and_the_time_left(owner_client, connector):
    record = claimed(connector, FIVE_ROWS)
    WhitelistImport.objects.filter(pk=record.pk).update(
        total=50_000,
        processed=50_000,
        phase=WhitelistImport.WRITING,
        phase_started_at=timezone.now() - timedelta(seconds=10),
        phase_done=20_000,
        phase_total=49_000,
    )
    state = owner_client.get(progress_url(record)).json()
    assert state["phase_label"] == "Adding devices"
    assert re.fullmatch(
        r"Step 2 of 3: Adding devices: 20,000 of 49,000 devices · [12],\d{3} devices/s · "
        r"about 1\d s left\.",
        state["phase_text"],
    ), state["phase_text"]
    assert 1_900 < state["rate"] <= 2_000
    assert 14 < state["eta_seconds"] < 15
    assert (state["bar_max"], state["bar_value"]) == (49_000, 20_000)
    page = owner_client.get(f"/connectors/{connector.pk}/imports/{record.pk}/").content.decode()
    assert '<progress id="import-progress" max="49000" value="20000"' in page
    assert '<li data-phase="writing" data-state="current" aria-current="step">' in page


def test_inside_the_writing_transaction_the_step_is_read_from_the_cache(owner_client, connector):
    record = claimed(connector, FIVE_ROWS)
    run = ImportRun(record)
    try:
        run._validate()
        # As the writers call it from inside their transaction.
        run._progress(WhitelistImport.WRITING, 0)
        run._progress(WhitelistImport.WRITING, 3)
        state = owner_client.get(progress_url(record)).json()
        assert (state["phase"], state["bar_value"], state["bar_max"]) == ("writing", 3, 5)
        run._progress(WhitelistImport.FINISHING, 5)
        state = owner_client.get(progress_url(record)).json()
        assert (state["phase"], state["bar_value"]) == ("finishing", None)
    finally:
        run.close(keep_upload=True)


def test_a_waiting_import_says_so_and_its_bar_has_no_end(owner_client, connector, settings):
    settings.IMPORT_INLINE_MAX_BYTES = 0
    response = owner_client.post(
        f"/connectors/{connector.pk}/imports/new/",
        {"file": SimpleUploadedFile("north.csv", FIVE_ROWS.encode()), "on_error": "abort"},
    )
    page = owner_client.get(response["Location"]).content.decode()
    assert "Waiting for a worker to start it." in page
    assert '<progress id="import-progress" max="1" data-state="pending"' in page


# --- the file's name -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("devices north.csv", "devices north.csv"),
        ("C:\\Users\\me\\Desktop\\batch 7.csv", "batch 7.csv"),
        ("../../etc/passwd", "passwd"),
        ("a\x00b\r\nc\u202e.csv", "a b c .csv"),
        ("..", ""),
        ("x" * 300 + ".csv", "x" * 119 + "…"),
    ],
)
def test_a_file_name_is_kept_for_display_only(sent, shown):
    assert display_name(sent) == shown


def test_the_file_name_is_shown_escaped_on_the_page_and_in_the_list(owner_client, connector):
    name = 'north<img src=x onerror="alert(1)">.csv'
    response = owner_client.post(
        f"/connectors/{connector.pk}/imports/new/",
        {"file": SimpleUploadedFile(name, FIVE_ROWS.encode()), "on_error": "abort"},
    )
    record = WhitelistImport.objects.get()
    assert record.original_name == name
    # Stored under a name of Gatehouse's own, never the one sent.
    assert re.fullmatch(rf"imports/{connector.pk}-[0-9a-f]{{32}}\.csv", record.file.name)
    escaped = "north&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.csv"
    for url in (response["Location"], f"/connectors/{connector.pk}/imports/new/"):
        page = owner_client.get(url).content.decode()
        assert escaped in page
        assert "<img src=x" not in page
    assert owner_client.get(progress_url(record)).json()["file_name"] == name


def test_the_engine_keeps_the_name_of_a_file_it_is_handed(connector):
    record = imports.start_import(connector, SimpleUploadedFile("/tmp/x/south.csv", b"ID\n1\n"))
    assert record.original_name == "south.csv"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_pipeline_reports_its_steps_in_order(owner_client, connector, settings):
    settings.IMPORT_BATCH_SIZE = 2
    record = claimed(connector, FIVE_ROWS)
    seen = followed(owner_client, record)
    order = [WhitelistImport.CHECKING, WhitelistImport.WRITING, WhitelistImport.FINISHING]
    phases = [state["phase"] for state in seen[:-1]]
    assert phases[0] == "checking" and "writing" in phases
    assert phases == sorted(phases, key=order.index)
    writing = [state for state in seen if state["phase"] == "writing"]
    assert all(state["bar_max"] == 5 and state["bar_value"] <= 5 for state in writing)
    assert (seen[-1]["status"], seen[-1]["created"]) == ("done", 5)
    record.refresh_from_db()
    assert (record.phase_done, record.phase_total) == (5, 5)
