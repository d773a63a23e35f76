"""GET /provision/download: the connector's content area, as Murano's (and the One
Platform's) provisioning API served it to devices.

- no `id`: the names of the connector's files, one a line (CRLF), `text/csv`;
  204 when there are none;
- `?id=<name>`: the file's bytes with its content type, resumable with `Range`
  and `If-Range`, skipped with `If-None-Match` (device_api.ranges);
- `?id=<name>&info=true`: `<content-type>,<size>,<updated unix seconds>,<description>`.

`vendor` and `model`, which One Platform clients add, name the connector the host
already names and are ignored. Devices authenticate as for every other path.
"""

from urllib.parse import parse_qsl

from django.http import HttpResponse

from connectors import content
from device_api import schema
from device_api.authentication import DEVICE_AUTHENTICATION
from device_api.ranges import file_response
from device_api.views import DeviceView
from devices import services

CSV = "text/csv; charset=utf-8"
# More than any real query holds; parse_qsl refuses past it (a 400, not work).
MAX_FIELDS = 16


class DownloadView(DeviceView):
    authentication_classes = DEVICE_AUTHENTICATION

    @schema.download
    def get(self, request, connector_id=None):
        device = request.user.device
        name, info = _query(request.META.get("QUERY_STRING", ""))
        if name is None:
            return _listing(device.connector_id)
        found = content.find(device.connector_id, name)
        if info:
            line = ",".join(
                [
                    found.content_type,
                    str(found.size),
                    str(int(found.uploaded_at.timestamp())),
                    found.description,
                ]
            )
            return HttpResponse(line, content_type=CSV)
        return file_response(
            request.META,
            lambda: found.file.open("rb"),
            size=found.size,
            content_type=found.content_type,
            etag=found.etag,
            modified=found.uploaded_at.timestamp(),
        )


def _query(query: str) -> tuple[str | None, bool]:
    """(the id asked for or None, whether its info is asked for)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:
        raise services.InvalidData("too many query parameters") from exc
    ids = [value for key, value in pairs if key == "id"]
    infos = [value.lower() for key, value in pairs if key == "info"]
    if len(ids) > 1 or len(infos) > 1:
        raise services.InvalidData("name id and info at most once each")
    if infos and infos[0] not in ("true", "false"):
        raise services.InvalidData("info is true or false")
    if not ids:
        return None, False
    if not ids[0]:
        raise services.InvalidData("id names a content file")
    return ids[0], infos == ["true"]


def _listing(connector_id: str) -> HttpResponse:
    names = list(content.files_of(connector_id).values_list("name", flat=True))
    if not names:
        response = HttpResponse(status=204)
        del response["Content-Type"]
        return response
    return HttpResponse("\r\n".join(names), content_type=CSV)
