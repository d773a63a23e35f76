"""The export: a connector's devices in the import format, so a file round-trips."""

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from connectors.models import Connector
from devices.imports.reader import HEADER
from devices.models import Credential, Device


def export_devices_csv(
    connector: Connector, chunk_rows: int = 2000, devices: QuerySet | None = None
) -> Iterator[str]:
    """Every device of `connector` (or of `devices`, a filtered set of them) in the
    import format, as CSV text chunks.

    Pinned certificates (the newest inactive or active certificate credential
    not issued through a CA or trust anchor) are written as PEM, so the file
    re-imports into another connector as is.
    Devices are read in primary-key pages: memory stays flat at any size.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    last_id = 0
    while True:
        page = list(
            (Device.objects.filter(connector=connector) if devices is None else devices)
            .filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", "identity", "tags")[:chunk_rows]
        )
        if not page:
            break
        pems = dict(
            Credential.objects.filter(
                device_id__in=[pk for pk, _, _ in page],
                kind=Connector.CERTIFICATE,
                state__in=[Credential.INACTIVE, Credential.ACTIVE],
                issuer_fingerprint="",
            )
            .order_by("device_id", "pk")
            .values_list("device_id", "certificate_pem")
        )
        for pk, identity, tags in page:
            writer.writerow((identity, pems.get(pk, ""), json.dumps(tags) if tags else ""))
        last_id = page[-1][0]
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
