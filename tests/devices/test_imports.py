"""CSV bulk whitelisting: the import engine, its API and the export."""

import csv
import hashlib
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection as db_connection
from django.db import transaction
from django.test import Client
from django.utils import timezone

from audit.models import Event
from devices import imports, tasks
from devices.imports.records import GivenUp, record_progress
from devices.imports.run import ALREADY_WHITELISTED, ImportRun
from devices.models import Credential, Device, WhitelistImport
from portal.celery import app as celery_app
from tests.support.clients import bearer_client

pytestmark = pytest.mark.django_db

# The identities.csv of docs/device-api.md's walkthrough, verbatim.
SEED_CSV = """ID,TLS Client Certificate,Tags
00000001,,"[{""name"": ""group"", ""value"": ""g1""},{""name"": ""claim_code"", ""value"": ""abc""}]"
00000002,,"[{""name"": ""group"", ""value"": ""g1""},{""name"": ""claim_code"", ""value"": ""abc""}]"
00000003,,"[{""name"": ""group"", ""value"": ""g2""},{""name"": ""claim_code"", ""value"": ""def""}]"
00000004,,"[{""name"": ""group"", ""value"": ""g2""},{""name"": ""claim_code"", ""value"": ""def""}]"
00000005,,"[{""name"": ""group"", ""value"": ""g3""},{""name"": ""claim_code"", ""value"": ""def""}]"
"""  # noqa: E501
HEADER = "ID,TLS Client Certificate,Tags\n"
BAD_ID = "The ID cell must be exactly 8 decimal digits; this one holds non-digits."


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def certificate_pem(common_name: str, *, days: int = 365) -> str:
    """A self-signed device certificate, as `openssl req -x509` makes in the walkthrough."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gatehouse tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=2))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def csv_text(*rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return HEADER + buffer.getvalue()


def tags(**pairs) -> str:
    return json.dumps([{"name": name, "value": value} for name, value in pairs.items()])


def run(connector, text: str | bytes, **options):
    """Import through the engine, as the portal does."""
    content = text.encode() if isinstance(text, str) else text
    return imports.start_import(
        connector,
        SimpleUploadedFile("identities.csv", content),
        dry_run=options.get("dry_run", False),
        on_error=options.get("on_error", "abort"),
        actor=options.get("actor"),
    )


def upload(client, connector, text: str | bytes, **fields):
    content = text.encode() if isinstance(text, str) else text
    return client.post(
        f"/api/v1/connectors/{connector.pk}/imports/",
        {"file": SimpleUploadedFile("identities.csv", content, "text/csv"), **fields},
    )


def errors_of(record) -> list[tuple[int, str]]:
    return [(error["line"], error["message"]) for error in record.errors]


def identities(connector) -> list[str]:
    return list(
        Device.objects.filter(connector=connector)
        .order_by("identity")
        .values_list("identity", flat=True)
    )


# --- the engine -------------------------------------------------------------------------


def test_the_seed_identities_csv_whitelists_five_devices_with_their_tags(
    owner_client, connector, owner
):
    before = timezone.now()
    response = upload(owner_client, connector, SEED_CSV)
    assert response.status_code == 202
    body = response.json()
    assert {key: body[key] for key in ("status", "total", "processed", "created", "errors")} == {
        "status": "done",
        "total": 5,
        "processed": 5,
        "created": 5,
        "errors": [],
    }
    assert identities(connector) == [f"0000000{n}" for n in range(1, 6)]
    third = Device.objects.get(identity="00000003")
    assert third.status == Device.WHITELISTED
    assert third.tags == [{"name": "group", "value": "g2"}, {"name": "claim_code", "value": "def"}]
    window = timedelta(seconds=connector.activation_window_seconds)
    assert before + window <= third.activation_expires_at <= timezone.now() + window
    # Two lines for the import (who started it, and its result), none per row.
    started, event = Event.objects.filter(connector=connector).order_by("id")
    assert (started.kind, started.actor_name) == (Event.IMPORT, "owner")
    assert "started" in started.reason
    assert event.kind == Event.IMPORT
    assert "5 whitelisted" in event.reason and "owner" in event.reason


def test_a_byte_order_mark_and_crlf_line_endings_are_accepted(connector):
    text = "\ufeff" + SEED_CSV.replace("\n", "\r\n")
    record = run(connector, text)
    assert (record.status, record.created, record.errors) == ("done", 5, [])
    assert Device.objects.get(identity="00000005").tags[0] == {"name": "group", "value": "g3"}


def test_the_certificate_and_tags_columns_may_be_left_out_in_any_order(connector):
    record = run(connector, 'tags , id\n"[]",00000001\n,00000002\n')
    assert (record.status, record.created) == ("done", 2)
    record = run(connector, "ID\n00000003\n\n,\n00000004\n")
    assert (record.status, record.total, record.created) == ("done", 2, 2)
    assert identities(connector) == ["00000001", "00000002", "00000003", "00000004"]


def test_a_pinned_certificate_in_a_quoted_multi_line_cell_is_kept_as_an_inactive_credential(
    connector,
):
    pem = certificate_pem("00000002")
    text = csv_text(("00000001", "", ""), ("00000002", pem.replace("\n", "\r\n"), tags(a="b")))
    record = run(connector, text)
    assert (record.status, record.created, record.errors) == ("done", 2, [])
    credential = Credential.objects.get()
    assert credential.device.identity == "00000002"
    assert (credential.kind, credential.state) == ("certificate", "inactive")
    certificate = x509.load_pem_x509_certificate(pem.encode())
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert credential.fingerprint == hashlib.sha256(der).hexdigest()
    assert credential.serial == format(certificate.serial_number, "x")
    assert credential.not_after == certificate.not_valid_after_utc
    assert credential.certificate_pem == pem
    assert not Credential.objects.filter(device__identity="00000001").exists()


def test_a_certificate_whose_cn_is_not_the_id_is_refused_on_its_line(connector):
    text = csv_text(("00000001", certificate_pem("00000009"), ""))
    record = run(connector, text)
    assert record.status == "failed"
    assert errors_of(record) == [
        (
            2,
            'The certificate in this row is for "00000009", not for the ID "00000001"; '
            "move it to its own device's row, or leave the cell empty.",
        )
    ]
    assert not Device.objects.exists()


def test_a_mac_cn_in_another_case_names_the_same_device(make_connector):
    connector = make_connector(identity_type="mac", identity_mac_style="colon")
    text = csv_text(("AA:BB:CC:00:11:22", certificate_pem("aa:bb:cc:00:11:22"), ""))
    record = run(connector, text)
    assert (record.status, record.created) == ("done", 1)
    assert identities(connector) == ["aa:bb:cc:00:11:22"]


def test_every_bad_row_is_reported_with_the_line_where_it_starts(connector, whitelist):
    whitelist(connector, "00000003")
    pem = certificate_pem("00000001")
    text = (
        HEADER
        + csv_text(("00000001", pem, tags(group="g1")))[len(HEADER) :]
        + "12ab,,\n"
        + "00000001,,\n"
        + "00000003,,\n"
        + '00000004,,"[{""name"": broken"\n'
        + '00000005,,"{""name"": ""a""}"\n'
        + "00000006,not a certificate,\n"
        + '00000007,"'  # a PEM of another device, with CR LF inside the cell
        + certificate_pem("00000070").replace("\n", "\r\n")
        + '",\n'
        + "00000008,,,extra\n"
        + "00000009\n"
        + '00000010,"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----",\n'
        + "00000011,,\n"
    )
    lines = text.splitlines()

    def line_of(prefix):
        return next(n for n, line in enumerate(lines, 1) if line.startswith(prefix))

    record = run(connector, text, on_error="skip")
    assert errors_of(record) == [
        (line_of("12ab,"), BAD_ID),
        (line_of("00000001,,"), "This ID is also on line 2 of the file; keep one of the two rows."),
        (line_of("00000003,"), ALREADY_WHITELISTED),
        (
            line_of("00000004,"),
            'The Tags cell must be a JSON list like [{"name": "site", "value": "north"}], '
            "or be left empty; this one is not JSON.",
        ),
        (
            line_of("00000005,"),
            'The Tags cell must be a JSON list like [{"name": "site", "value": "north"}], '
            "or be left empty; this one is JSON but not a list.",
        ),
        (
            line_of("00000006,"),
            "The TLS Client Certificate cell must hold a PEM certificate (-----BEGIN "
            "CERTIFICATE----- … -----END CERTIFICATE-----), or be left empty; this one does not.",
        ),
        (
            line_of("00000007,"),
            'The certificate in this row is for "00000070", not for the ID "00000007"; '
            "move it to its own device's row, or leave the cell empty.",
        ),
        (
            line_of("00000008,"),
            "This row has 4 cells but the header has 3 columns; remove the extra cells, "
            "or put quotes around a cell that holds a comma.",
        ),
        (
            line_of("00000009"),
            "This row stops before its TLS Client Certificate and Tags cells; every row "
            "needs 3 cells (an empty cell is fine, but keep its comma).",
        ),
        (
            line_of("00000010,"),
            "The TLS Client Certificate cell holds a private key, which must never be in "
            "this file; keep only the certificate and keep the key on the device.",
        ),
    ]
    # Every message speaks of the spreadsheet, never of Python.
    for error in record.errors:
        assert "Expecting" not in error["message"] and "char " not in error["message"]
    # The PEM on line 2 spreads the first row over lines 2 to 11 or so.
    assert line_of("12ab,") > 10
    assert [error["identity"] for error in record.errors[:3]] == ["12ab", "00000001", "00000003"]
    assert (record.status, record.error_count, record.created) == ("done", 10, 2)
    assert identities(connector) == ["00000001", "00000003", "00000011"]
    # An upload that held a private key is not kept at rest.
    assert not record.file.storage.exists(record.file.name)


def test_abort_writes_nothing_when_one_row_is_bad(connector):
    record = run(connector, SEED_CSV + "bad-id,,\n")
    assert (record.status, record.created, record.error_count) == ("failed", 0, 1)
    assert errors_of(record)[0][0] == 7
    assert not Device.objects.exists()
    event = Event.objects.filter(connector=connector).order_by("id").last()
    assert (event.kind, "nothing written" in event.reason) == (Event.IMPORT, True)


def test_skip_writes_the_good_rows_and_reports_the_bad_ones(connector):
    record = run(connector, SEED_CSV + "bad-id,,\n00000006,,\n", on_error="skip")
    assert (record.status, record.created, record.error_count) == ("done", 6, 1)
    assert errors_of(record) == [(7, BAD_ID)]
    assert len(identities(connector)) == 6


def test_a_dry_run_reports_everything_and_writes_nothing(connector, whitelist):
    whitelist(connector, "00000002")
    record = run(connector, SEED_CSV + "0000000x,,\n", dry_run=True, on_error="skip")
    assert (record.status, record.processed, record.created) == ("done", 6, 0)
    assert [line for line, _ in errors_of(record)] == [3, 7]
    assert identities(connector) == ["00000002"]
    assert not Event.objects.filter(kind=Event.IMPORT).exists()


def test_a_file_that_breaks_off_half_way_fails_and_writes_nothing_even_with_skip(connector):
    broken = SEED_CSV.encode() + b'00000006,,"[]"x\n00000007,,\n'
    record = run(connector, broken, on_error="skip")
    assert record.status == "failed"
    assert record.errors[0]["line"] is None
    assert record.errors[0]["message"].startswith("Line 7 is not valid CSV: a quote opens")
    assert "Error" not in record.errors[0]["message"]
    assert not Device.objects.exists()

    # Past the first 64 KB, which are checked before the file is stored.
    good = HEADER + "".join(f"{n:08d},,\n" for n in range(1, 8001))
    record = run(connector, good.encode() + b"00000000,,\xff\xfe\n", on_error="skip")
    assert record.errors[0]["message"] == (
        "Line 8002 is not UTF-8 text; save the file as CSV UTF-8 "
        "(in Excel: Save As, CSV UTF-8) and upload it again."
    )
    assert not Device.objects.exists()


def test_an_empty_file_is_refused_before_it_is_stored(connector):
    with pytest.raises(imports.InvalidImportFile, match="the file is empty"):
        run(connector, b"\r\n\r\n")
    assert not WhitelistImport.objects.exists()


def test_tags_that_postgresql_could_not_store_are_a_bad_row(connector):
    record = run(connector, csv_text(("00000001", "", '[{"name": "a", "value": "x\\u0000"}]')))
    assert errors_of(record) == [
        (
            2,
            "The Tags cell holds an invisible control character (a \\u0000 or an unpaired "
            "\\ud800-style escape); delete it and type the text again.",
        )
    ]


def test_only_the_first_errors_are_kept_on_the_row_and_all_in_the_report(
    owner_client, connector, settings
):
    settings.IMPORT_MAX_STORED_ERRORS = 3
    text = HEADER + "".join(f"bad{n},,\n" for n in range(10))
    record = run(connector, text)
    assert (record.error_count, len(record.errors)) == (10, 3)
    report = b"".join(imports.error_report_chunks(record)).decode()
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0] == ["line", "identity", "message"]
    assert [row[0] for row in rows[1:]] == [str(n) for n in range(2, 12)]


def test_running_an_import_twice_does_nothing_the_second_time(connector):
    record = run(connector, SEED_CSV)
    assert imports.run_import(record.pk).created == 5
    assert Device.objects.count() == 5
    # Started once, finished once.
    assert Event.objects.filter(kind=Event.IMPORT).count() == 2


def test_export_then_import_into_another_connector_round_trips(make_connector, connector):
    pem = certificate_pem("00000002")
    text = csv_text(
        ("00000001", "", tags(group="g1", claim_code="abc")),
        ("00000002", pem, tags(group="g2")),
        ("00000003", "", ""),
    )
    assert run(connector, text).created == 3
    exported = "".join(imports.export_devices_csv(connector, chunk_rows=2))
    assert exported.startswith("ID,TLS Client Certificate,Tags\n")

    copy = make_connector(identity_type="base10", identity_length=8)
    record = run(copy, exported)
    assert (record.status, record.created, record.errors) == ("done", 3, [])
    for identity in ("00000001", "00000002", "00000003"):
        original = Device.objects.get(connector=connector, identity=identity)
        again = Device.objects.get(connector=copy, identity=identity)
        assert again.tags == original.tags
    assert Credential.objects.get(device__connector=copy).certificate_pem == pem
    assert "".join(imports.export_devices_csv(copy)) == exported


def test_a_large_file_runs_on_the_worker_and_finishes_with_its_counts(
    owner_client, connector, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    group = tags(group="line-7", claim_code="c")
    text = csv_text(*((f"{n:08d}", "", group) for n in range(1, 20_001)))
    assert len(text) > 1024 * 1024  # above IMPORT_INLINE_MAX_BYTES
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(owner_client, connector, text)
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert not Device.objects.exists()
    for callback in callbacks:
        callback()  # the transaction committed: the task is sent, and runs eagerly here
    progress = owner_client.get(
        f"/api/v1/connectors/{connector.pk}/imports/{response.json()['id']}/"
    ).json()
    assert {key: progress[key] for key in ("status", "total", "processed", "created")} == {
        "status": "done",
        "total": 20_000,
        "processed": 20_000,
        "created": 20_000,
    }
    assert Device.objects.filter(connector=connector).count() == 20_000


# --- imports whose worker went away ------------------------------------------------------


def stored_import(connector, text: str, *, status: str, quiet_minutes: int = 0):
    """An uploaded import in `status` whose last progress was `quiet_minutes` ago."""
    record = WhitelistImport(connector=connector)
    record.file.save(f"{connector.pk}-upload.csv", ContentFile(text.encode()), save=False)
    record.status = status
    record.save()
    quiet(record, quiet_minutes)
    return record


def quiet(record, minutes: int) -> None:
    WhitelistImport.objects.filter(pk=record.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes)
    )
    record.refresh_from_db()


def test_a_running_import_without_progress_is_failed_and_its_upload_removed(connector):
    stalled = stored_import(connector, SEED_CSV, status="running", quiet_minutes=16)
    busy = stored_import(connector, SEED_CSV, status="running", quiet_minutes=14)
    finished = stored_import(connector, SEED_CSV, status="done", quiet_minutes=60)

    assert tasks.fail_stalled_imports() == {"failed": 1, "queued again": 0, "uploads removed": 0}

    stalled.refresh_from_db()
    assert (stalled.status, stalled.created, stalled.error_count) == ("failed", 0, 1)
    assert stalled.errors == [
        {
            "line": None,
            "identity": "",
            "message": "its worker stopped (no progress for 900 s); nothing was written",
        }
    ]
    assert stalled.finished_at is not None
    assert not stalled.file.storage.exists(stalled.file.name)
    assert Event.objects.get(kind=Event.IMPORT).reason == (
        f"CSV import {stalled.pk} stopped: its worker went away, nothing written"
    )
    for record in (busy, finished):
        status = record.status
        record.refresh_from_db()
        assert record.status == status
        assert record.file.storage.exists(record.file.name)
    # A second sweep finds nothing more to do.
    assert tasks.fail_stalled_imports() == {"failed": 0, "queued again": 0, "uploads removed": 0}


def test_a_worker_that_outlives_the_sweep_writes_nothing(connector):
    record = stored_import(connector, SEED_CSV, status="running")
    run = ImportRun(record)
    try:
        run._validate()  # every row read, checked and staged
        quiet(record, 16)  # then the worker went quiet, and the sweep ended the import
        assert tasks.fail_stalled_imports()["failed"] == 1
        # Its next progress update, or its last step, finds the import no longer
        # running: it stops, and the write rolls back.
        with pytest.raises(GivenUp):
            record_progress(record.pk, record.attempts, processed=5)
        with pytest.raises(GivenUp):
            run._write()
    finally:
        run.close()
    assert not Device.objects.exists()
    record.refresh_from_db()
    assert (record.status, record.created) == ("failed", 0)
    assert Event.objects.filter(kind=Event.IMPORT).count() == 1


def test_a_pending_import_no_worker_took_is_queued_again(connector, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    lost = stored_import(connector, SEED_CSV, status="pending", quiet_minutes=16)
    waiting = stored_import(connector, HEADER + "00000099,,\n", status="pending", quiet_minutes=1)

    # The task is sent again (and runs eagerly here).
    assert tasks.fail_stalled_imports() == {"failed": 0, "queued again": 1, "uploads removed": 0}

    lost.refresh_from_db()
    assert (lost.status, lost.created) == ("done", 5)
    assert not lost.file.storage.exists(lost.file.name)
    waiting.refresh_from_db()
    assert waiting.status == "pending"
    # The first task turns up after all: the import ran already, so it does nothing.
    assert imports.run_import(lost.pk).created == 5
    assert Device.objects.filter(connector=connector).count() == 5


def taken_once(record, attempts: int):
    WhitelistImport.objects.filter(pk=record.pk).update(attempts=attempts)
    record.refresh_from_db()
    return record


def test_a_task_handed_out_again_takes_over_the_import_of_its_dead_worker(connector):
    # The worker that ran it died: its progress is recent, its write never committed.
    record = taken_once(stored_import(connector, SEED_CSV, status="running"), 1)
    WhitelistImport.objects.filter(pk=record.pk).update(processed=3, error_count=1)

    tasks.run_whitelist_import(record.pk)  # the broker hands the task out again

    record.refresh_from_db()
    assert (record.status, record.attempts, record.created) == ("done", 2, 5)
    assert (record.processed, record.error_count, record.errors) == (5, 0, [])
    assert not record.file.storage.exists(record.file.name)
    assert Device.objects.filter(connector=connector).count() == 5


def test_an_upload_request_does_not_take_over_a_running_import(connector):
    record = taken_once(stored_import(connector, SEED_CSV, status="running"), 1)
    assert imports.run_import(record.pk).status == "running"
    record.refresh_from_db()
    assert (record.status, record.attempts) == ("running", 1)
    assert not Device.objects.exists()


def test_a_run_that_was_taken_over_writes_nothing_and_keeps_the_upload(connector):
    record = taken_once(stored_import(connector, SEED_CSV, status="running"), 1)
    first = ImportRun(record)
    try:
        first._validate()  # the first worker read every row, then the task was handed out again
        tasks.run_whitelist_import(record.pk)
        with pytest.raises(GivenUp):
            first._write()
    finally:
        first.close(keep_upload=True)
    record.refresh_from_db()
    assert (record.status, record.attempts, record.created) == ("done", 2, 5)
    assert Device.objects.filter(connector=connector).count() == 5
    assert Event.objects.filter(kind=Event.IMPORT).count() == 1


def test_an_import_whose_worker_keeps_dying_fails_after_three_runs(connector):
    record = taken_once(stored_import(connector, SEED_CSV, status="running"), 3)
    tasks.run_whitelist_import(record.pk)
    record.refresh_from_db()
    assert (record.status, record.attempts, record.created) == ("failed", 3, 0)
    assert record.errors[-1]["message"] == (
        "its worker stopped 3 times running it; nothing was written"
    )
    assert not record.file.storage.exists(record.file.name)
    assert not Device.objects.exists()


# --- the API -------------------------------------------------------------------------------


def test_a_failed_import_has_a_downloadable_error_report(owner_client, connector):
    body = upload(owner_client, connector, SEED_CSV + "bad-id,,\n").json()
    assert (body["status"], body["created"]) == ("failed", 0)
    assert body["errors"] == [
        {
            "line": 7,
            "identity": "bad-id",
            "message": BAD_ID,
        }
    ]
    base = f"/api/v1/connectors/{connector.pk}/imports/{body['id']}/"
    assert owner_client.get(base).json() == body
    response = owner_client.get(base + "errors.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(response.streaming_content).decode() == (
        f"line,identity,message\n7,bad-id,{BAD_ID}\n"
    )


def test_the_error_report_waits_for_the_import_to_finish(owner_client, connector):
    record = WhitelistImport.objects.create(connector=connector)
    url = f"/api/v1/connectors/{connector.pk}/imports/{record.pk}/errors.csv"
    assert owner_client.get(url, HTTP_ACCEPT="text/csv").status_code == 409


def test_options_travel_as_form_fields(owner_client, connector):
    body = upload(owner_client, connector, SEED_CSV, dry_run="true", on_error="skip").json()
    assert (body["dry_run"], body["on_error"], body["created"]) == (True, "skip", 0)
    assert not Device.objects.exists()


def test_devices_csv_streams_the_export(owner_client, connector):
    run(connector, SEED_CSV)
    response = owner_client.get(
        f"/api/v1/connectors/{connector.pk}/devices.csv", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{connector.pk}-devices.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["ID", "TLS Client Certificate", "Tags"]
    assert [row[0] for row in rows[1:]] == [f"0000000{n}" for n in range(1, 6)]
    assert json.loads(rows[1][2]) == [
        {"name": "group", "value": "g1"},
        {"name": "claim_code", "value": "abc"},
    ]


def test_an_api_token_works_as_well_as_the_session(owner, connector):
    client = bearer_client(owner)
    response = client.post(
        f"/api/v1/connectors/{connector.pk}/imports/",
        {"file": SimpleUploadedFile("identities.csv", SEED_CSV.encode())},
        format="multipart",
    )
    assert (response.status_code, response.json()["created"]) == (202, 5)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the file is binary, not CSV text"),
        (b"ID,Tags\n\xff\xfe\xfd,\n", "the file is not UTF-8 text"),
        (b"Name,Colour\nx,y\n", 'line 1: unknown column "Name"'),
        (b"Tags\n[]\n", 'line 1: the header has no "ID" column'),
        (b"ID,ID\n1,2\n", 'line 1: column "ID" appears twice'),
    ],
)
def test_a_file_that_is_not_a_whitelist_csv_is_400_and_stores_nothing(
    owner_client, connector, content, message
):
    response = upload(owner_client, connector, content)
    assert response.status_code == 400
    assert message in str(response.json())
    assert not WhitelistImport.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [({}, "file"), ({"on_error": "explode"}, "on_error"), ({"dry_run": "maybe"}, "dry_run")],
)
def test_bad_form_fields_are_400_naming_the_field(owner_client, connector, fields, field):
    data = {"file": SimpleUploadedFile("a.csv", SEED_CSV.encode()), **fields}
    if field == "file":
        del data["file"]
    response = owner_client.post(f"/api/v1/connectors/{connector.pk}/imports/", data)
    assert response.status_code == 400
    assert field in response.json()
    assert not WhitelistImport.objects.exists()


def test_a_file_over_the_size_limit_is_413(owner_client, connector, settings):
    settings.IMPORT_MAX_BYTES = 100
    response = upload(owner_client, connector, SEED_CSV)
    assert response.status_code == 413
    assert "larger than 100 bytes" in response.json()["detail"]
    assert not WhitelistImport.objects.exists()


def test_a_stranger_gets_404_everywhere_and_anonymous_callers_401(
    owner_client, connector, other_user
):
    body = upload(owner_client, connector, SEED_CSV).json()
    base = f"/api/v1/connectors/{connector.pk}/"
    stranger = Client()
    stranger.force_login(other_user)
    urls = [
        base + f"imports/{body['id']}/",
        base + f"imports/{body['id']}/errors.csv",
        base + "devices.csv",
    ]
    for url in urls:
        assert stranger.get(url).status_code == 404
        assert Client().get(url).status_code == 401
    assert upload(stranger, connector, SEED_CSV).status_code == 404
    assert upload(Client(), connector, SEED_CSV).status_code == 401
    assert WhitelistImport.objects.count() == 1


def test_an_import_is_found_only_under_its_own_connector(owner_client, connector, make_connector):
    body = upload(owner_client, connector, SEED_CSV).json()
    second = make_connector()
    response = owner_client.get(f"/api/v1/connectors/{second.pk}/imports/{body['id']}/")
    assert response.status_code == 404


# --- PostgreSQL: writing while reading, on a second connection ------------------------------
# Outside a caller's transaction the engine writes each batch on its own
# connection while the next is read; these tests commit for real to reach it.


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_batches_are_written_while_the_file_is_read(connector, settings):
    settings.IMPORT_BATCH_SIZE = 2
    pem = certificate_pem("00000007")
    record = run(connector, SEED_CSV + csv_text(("00000006", "", ""), ("00000007", pem, ""))[30:])
    assert (record.status, record.created, record.errors) == ("done", 7, [])
    assert Credential.objects.get().device.identity == "00000007"
    assert Device.objects.get(identity="00000002").tags[1] == {"name": "claim_code", "value": "abc"}
    assert Event.objects.filter(kind=Event.IMPORT).last().reason.endswith("7 whitelisted")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_worker_that_outlives_the_sweep_takes_back_its_batches(connector, settings):
    settings.IMPORT_BATCH_SIZE = 2
    test_a_worker_that_outlives_the_sweep_writes_nothing(connector)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_abort_takes_back_batches_already_written(connector, settings):
    settings.IMPORT_BATCH_SIZE = 2
    record = run(connector, SEED_CSV + "bad-id,,\n")
    assert (record.status, record.created, record.error_count) == ("failed", 0, 1)
    assert not Device.objects.exists()
    record = run(connector, SEED_CSV + "bad-id,,\n", on_error="skip")
    assert (record.status, record.created) == ("done", 5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("on_error", "status", "created"), [("skip", "done", 2), ("abort", "failed", 0)]
)
def test_an_identity_whitelisted_while_the_import_runs_is_reported_not_doubled(
    connector, settings, whitelist, on_error, status, created
):
    settings.IMPORT_BATCH_SIZE = 1
    held, failures = threading.Event(), []

    def whitelist_meanwhile():
        # Whitelists 00000003 in a transaction the import cannot see yet, and
        # commits only once the import has checked every row.
        try:
            with transaction.atomic():
                whitelist(connector, "00000003")
                held.set()
                deadline = time.monotonic() + 30
                while not WhitelistImport.objects.filter(processed=3).exists():
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
            held.set()
        finally:
            db_connection.close()

    other = threading.Thread(target=whitelist_meanwhile)
    other.start()
    held.wait(10)
    record = run(
        connector,
        csv_text(("00000001", "", ""), ("00000002", "", ""), ("00000003", "", "")),
        on_error=on_error,
    )
    other.join(30)
    assert not failures
    assert (record.status, record.created) == (status, created)
    assert errors_of(record) == [(4, ALREADY_WHITELISTED)]
    expected = ["00000001", "00000002", "00000003"] if on_error == "skip" else ["00000003"]
    assert identities(connector) == expected
