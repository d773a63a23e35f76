"""Portal "Add many devices": upload form, import status page and its progress endpoint."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from devices import services
from devices.models import Device, WhitelistImport

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    "ID,TLS Client Certificate,Tags\r\n"
    '00000001,,"[{""name"": ""group"", ""value"": ""g1""}]"\r\n'
    '00000002,,"[{""name"": ""group"", ""value"": ""g2""}]"\r\n'
)
TWO_BAD_ROWS_CSV = (
    "ID,TLS Client Certificate,Tags\n"
    "00000001,,\n"
    "12ab,,\n"
    "00000003,,\n"
    '00000004,,"[{""name"": broken"\n'
)


def upload(client, connector, text: str | bytes, **options):
    content = text.encode() if isinstance(text, str) else text
    data = {
        "file": SimpleUploadedFile("identities.csv", content, content_type="text/csv"),
        "on_error": "abort",
        **options,
    }
    return client.post(f"/connectors/{connector.pk}/imports/new/", data)


def test_upload_whitelists_every_row_and_shows_the_result(owner_client, connector):
    response = upload(owner_client, connector, GOOD_CSV)
    run = WhitelistImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/connectors/{connector.pk}/imports/{run.pk}/"
    assert sorted(Device.objects.values_list("identity", flat=True)) == ["00000001", "00000002"]
    page = owner_client.get(response["Location"]).content.decode()
    assert "Done: 2 devices whitelisted." in page
    assert '<progress id="import-progress" max="2" value="2"' in page
    assert f"/api/v1/connectors/{connector.pk}/devices.csv" in page


def test_bad_rows_are_listed_with_their_line_numbers_and_abort_writes_nothing(
    owner_client, connector
):
    response = upload(owner_client, connector, TWO_BAD_ROWS_CSV)
    page = owner_client.get(response["Location"]).content.decode()
    assert not Device.objects.exists()
    errors = page[page.index('id="import-errors"') :]
    assert '<td data-label="Line" class="nowrap">3</td>' in errors
    assert "The ID cell must be exactly 8 decimal digits; this one holds non-digits." in errors
    assert '<td data-label="Line" class="nowrap">5</td>' in errors
    assert "The Tags cell must be a JSON list like" in errors
    assert "this one is not JSON." in errors
    assert "nothing was whitelisted" in page
    run = WhitelistImport.objects.get()
    assert f"/api/v1/connectors/{connector.pk}/imports/{run.pk}/errors.csv" in page


def test_skip_keeps_the_good_rows(owner_client, connector):
    upload(owner_client, connector, TWO_BAD_ROWS_CSV, on_error="skip")
    assert sorted(Device.objects.values_list("identity", flat=True)) == ["00000001", "00000003"]


def test_dry_run_checks_but_writes_nothing(owner_client, connector):
    response = upload(owner_client, connector, GOOD_CSV, dry_run="on")
    assert not Device.objects.exists()
    page = owner_client.get(response["Location"]).content.decode()
    assert "Dry run finished: 2 rows would be added" in page


def test_rows_already_whitelisted_are_reported(owner_client, connector):
    services.whitelist_device(connector, "00000002")
    response = upload(owner_client, connector, GOOD_CSV, on_error="skip")
    page = owner_client.get(response["Location"]).content.decode()
    assert "already whitelisted" in page


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\x02binary", "binary"),
        (b"\xff\xfe\xfa not utf-8", "UTF-8"),
        (b"Name,Colour\nx,y\n", "ID"),
    ],
)
def test_a_file_that_is_not_a_whitelist_csv_is_refused_next_to_the_field(
    owner_client, connector, content, message
):
    response = upload(owner_client, connector, content)
    assert response.status_code == 200
    body = response.content.decode()
    error = body[body.index('id="id_file_error"') :][:600]
    assert message in error
    assert not WhitelistImport.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"on_error": "abort"}, "file", "required"),
        ({"on_error": "explode"}, "on_error", "Select a valid choice"),
    ],
)
def test_bad_upload_form_is_refused_next_to_the_field(
    owner_client, connector, data, field, message
):
    files = {} if field == "file" else {"file": SimpleUploadedFile("a.csv", GOOD_CSV.encode())}
    response = owner_client.post(f"/connectors/{connector.pk}/imports/new/", {**data, **files})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WhitelistImport.objects.exists()


def test_progress_endpoint_reports_counts_and_errors(owner_client, connector):
    upload(owner_client, connector, TWO_BAD_ROWS_CSV, on_error="skip")
    run = WhitelistImport.objects.get()
    state = owner_client.get(f"/connectors/{connector.pk}/imports/{run.pk}/progress").json()
    assert state["status"] == "done"
    assert state["finished"] is True
    assert (state["total"], state["processed"], state["created"]) == (4, 4, 2)
    assert state["error_count"] == 2
    assert [error["line"] for error in state["errors"]] == [3, 5]


def test_imports_of_someone_elses_connector_are_404(owner_client, connector, other_user):
    upload(owner_client, connector, GOOD_CSV)
    run = WhitelistImport.objects.get()
    stranger = Client()
    stranger.force_login(other_user)
    base = f"/connectors/{connector.pk}/imports"
    assert stranger.get(f"{base}/{run.pk}/").status_code == 404
    assert stranger.get(f"{base}/{run.pk}/progress").status_code == 404
    response = stranger.post(
        f"{base}/new/", {"file": SimpleUploadedFile("a.csv", GOOD_CSV.encode())}
    )
    assert response.status_code == 404


def test_unknown_import_is_404(owner_client, connector, make_connector):
    upload(owner_client, connector, GOOD_CSV)
    run = WhitelistImport.objects.get()
    other = make_connector()
    assert owner_client.get(f"/connectors/{other.pk}/imports/{run.pk}/").status_code == 404
    assert owner_client.get(f"/connectors/{connector.pk}/imports/999999/").status_code == 404


def test_upload_needs_csrf_token(owner, connector):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = upload(client, connector, GOOD_CSV)
    assert response.status_code == 403
    assert not WhitelistImport.objects.exists()
