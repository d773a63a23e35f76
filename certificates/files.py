"""Certificates as files: what the portal hands out for saving, and the page an issuance
redirects to.

A key Gatehouse generates is shown once. The issuing POST keeps it in the session
for exactly one GET of the issued page (post/redirect/get), so a refresh shows the
certificate again but neither re-issues nor shows the key a second time. That one
page offers the key and a PEM bundle (key, certificate, CA) as downloads built in
the browser from what it shows; the server never serves the key.
"""

import io
import zipfile

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from accounts.permissions import maker_required
from certificates import services
from certificates.models import IssuedCertificate
from connectors.views import connector_context, get_connector

ISSUED_KEY = "certificates:issued-key"
PEM = "application/x-pem-file"


def keep_key_for_one_view(request, issued: services.Issued) -> None:
    """Keep a generated key in the session until the issued page shows it once."""
    key = issued.private_key_pem
    if key:
        request.session[ISSUED_KEY] = {"certificate": issued.certificate.pk, "key": key}


def _take_key(request, certificate: IssuedCertificate) -> str:
    held = request.session.get(ISSUED_KEY)
    if not held or held.get("certificate") != certificate.pk:
        return ""
    del request.session[ISSUED_KEY]
    return held["key"]


def _authority(connector):
    authority = services.authority_of(connector)
    if authority is None:
        raise Http404("this connector has no certificate authority")
    return authority


def _issued(connector, certificate_id) -> IssuedCertificate:
    authority = _authority(connector)
    return get_object_or_404(IssuedCertificate, authority=authority, pk=certificate_id)


def attachment(body, filename: str, content_type: str = PEM) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def file_stem(certificate: IssuedCertificate) -> str:
    """A file name from the CN: letters, digits, '-', '_' and '.' kept, the rest '_'."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in certificate.common_name)
    return stem.strip(".")[:64] or f"certificate-{certificate.pk}"


@maker_required
@require_GET
def issued_page(request, connector_id, certificate_id):
    connector = get_connector(request, connector_id)
    certificate = _issued(connector, certificate_id)
    context = connector_context(request, connector, "certificates")
    context.update(
        issued=certificate,
        private_key_pem=_take_key(request, certificate),
        ca_pem=certificate.authority.certificate_pem,
        stem=file_stem(certificate),
    )
    response = render(request, "certificates/issued.html", context)
    # The page may hold a private key: keep it out of every cache.
    response["Cache-Control"] = "no-store"
    return response


@maker_required
@require_GET
def certificate_file(request, connector_id, certificate_id):
    certificate = _issued(get_connector(request, connector_id), certificate_id)
    return attachment(certificate.certificate_pem, f"{file_stem(certificate)}-cert.pem")


@maker_required
@require_GET
def bundle_file(request, connector_id, certificate_id):
    """A zip of the device certificate, the CA that signed it, and the two as one chain."""
    certificate = _issued(get_connector(request, connector_id), certificate_id)
    stem = file_stem(certificate)
    ca_pem = certificate.authority.certificate_pem
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(f"{stem}/device-cert.pem", certificate.certificate_pem)
        bundle.writestr(f"{stem}/ca.pem", ca_pem)
        bundle.writestr(f"{stem}/chain.pem", certificate.certificate_pem.rstrip() + "\n" + ca_pem)
    return attachment(buffer.getvalue(), f"{stem}.zip", "application/zip")


@maker_required
@require_GET
def authority_file(request, connector_id):
    connector = get_connector(request, connector_id)
    authority = _authority(connector)
    return attachment(authority.certificate_pem, f"{connector.pk}-ca.pem")
