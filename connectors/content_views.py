"""Portal pages of a connector's content area: the files its devices download.

Like every connector page, for device makers only (`maker_required`), with the
connector looked up through `connectors_for` (another maker's is a 404).
"""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import maker_required
from connectors import content
from connectors.forms import ContentUploadForm
from connectors.views import audit, connector_context, get_connector

# Multipart framing around the file: boundaries, part headers, the other fields.
_MULTIPART_SLACK = 64 * 1024


@maker_required
@require_http_methods(["GET", "POST"])
def content_list(request, connector_id):
    connector = get_connector(request, connector_id)
    form, status = ContentUploadForm(), 200
    if request.method == "POST":
        form, status = _upload(request, connector)
        if form is None:
            return redirect("connectors:content", connector_id=connector.pk)
    context = connector_context(request, connector, "content")
    context.update(
        form=form,
        files=content.files_of(connector.pk).select_related("uploaded_by"),
        max_bytes=settings.CONTENT_MAX_BYTES,
        download_url=context["endpoints"]["device_base"] + "/provision/download",
    )
    return render(request, "connectors/content.html", context, status=status)


def _upload(request, connector) -> tuple[ContentUploadForm | None, int]:
    """(None, 302) once stored; else the form with its errors and the status to answer."""
    too_large = f"The file is larger than {filesizeformat(settings.CONTENT_MAX_BYTES)}."
    # Django's CSRF check has read the form (into a temporary file) by now; the
    # limit is still applied before anything is stored.
    length = request.META.get("CONTENT_LENGTH") or "0"
    if length.isdigit() and int(length) > settings.CONTENT_MAX_BYTES + _MULTIPART_SLACK:
        form = ContentUploadForm()
        form.add_error(None, too_large)
        return form, 413
    form = ContentUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return form, 400
    data = form.cleaned_data
    try:
        stored, created = content.upload(
            connector,
            data["file"],
            name=data["name"],
            content_type=data["content_type"],
            description=data["description"],
            **audit(request),
        )
    except content.ContentTooLarge:
        form.add_error("file", too_large)
        return form, 413
    except content.InvalidContent as exc:
        form.add_error(None, exc.message[:1].upper() + exc.message[1:] + ".")
        return form, 400
    verb = "uploaded" if created else "replaced"
    messages.success(request, f"“{stored.name}” {verb} ({filesizeformat(stored.size)}).")
    return None, 302


@maker_required
@require_POST
def content_delete(request, connector_id, name):
    connector = get_connector(request, connector_id)
    try:
        found = content.find(connector.pk, name)
    except content.ContentNotFound:
        messages.error(request, "That file is not in the content area any more.")
        return redirect("connectors:content", connector_id=connector.pk)
    content.delete(found, **audit(request))
    messages.success(request, f"“{found.name}” deleted.")
    return redirect("connectors:content", connector_id=connector.pk)
