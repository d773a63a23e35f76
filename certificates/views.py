"""Portal pages for a connector's CA, trust anchors and device certificates, and the
public CA certificate and CRL.
"""

import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import maker_required
from audit.events import Actor
from certificates import files, services
from certificates.api.views import status_of
from certificates.forms import AuthorityForm, IssueForm, TrustAnchorForm, VerificationForm
from certificates.models import (
    CertificateAuthority,
    IssuedCertificate,
    RevokedCertificate,
    TrustAnchor,
)
from connectors.models import CONNECTOR_ID_PATTERN, Connector
from connectors.views import connector_context, get_connector
from core.net import client_ip
from devices.models import Device

ISSUED_ON_PAGE = 50
CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)


def _authority_or_404(connector_id: str) -> CertificateAuthority:
    # Only a well-formed id reaches the database (a NUL byte would upset PostgreSQL).
    if not CONNECTOR_ID.fullmatch(connector_id):
        raise Http404("no certificate authority")
    authority = CertificateAuthority.objects.filter(connector_id=connector_id).first()
    if authority is None:
        raise Http404("no certificate authority")
    return authority


@require_GET
def ca_certificate(request, connector_id):
    authority = _authority_or_404(connector_id)
    response = HttpResponse(authority.certificate_pem, content_type="application/x-pem-file")
    response["Content-Disposition"] = f'inline; filename="{connector_id}-ca.pem"'
    return response


@require_GET
def crl(request, connector_id, as_pem=False):
    """The CA's CRL, re-signed whenever a revocation is newer than the last one."""
    der = services.current_crl(_authority_or_404(connector_id))
    if as_pem:
        text = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
        return HttpResponse(text, content_type="application/x-pem-file")
    response = HttpResponse(der, content_type="application/pkix-crl")
    response["Content-Disposition"] = f'inline; filename="{connector_id}.crl"'
    return response


# --- portal -----------------------------------------------------------------------------


def _audit(request) -> dict:
    return {"actor": Actor.of(request, "portal"), "ip": client_ip(request)}


def _page(request, connector, **extra) -> dict:
    context = connector_context(request, connector, "certificates")
    authority = services.authority_of(connector)
    context.update(
        authority=authority,
        authority_form=AuthorityForm(),
        issue_form=IssueForm(),
        anchor_form=TrustAnchorForm(),
        verification_form=VerificationForm(),
        blank_verification_form=VerificationForm(),
        # The anchor whose verification form holds errors; the others show a fresh one.
        verifying=None,
        anchors=TrustAnchor.objects.filter(connector=connector),
        anchor_limit=TrustAnchor.MAX_PER_CONNECTOR,
        issued=(
            IssuedCertificate.objects.filter(authority=authority)
            .select_related("device")
            .order_by("-id")[:ISSUED_ON_PAGE]
            if authority
            else []
        ),
        issued_count=IssuedCertificate.objects.filter(authority=authority).count()
        if authority
        else 0,
        pki_base=request.build_absolute_uri(f"/pki/{connector.pk}/"),
        authority_subject=(
            services.authority_certificate(authority).subject.rfc4514_string() if authority else ""
        ),
    )
    context.update(extra)
    return context


@maker_required
@require_GET
def connector_certificates(request, connector_id):
    """The connector's CA, what it issued, and its trust anchors."""
    connector = get_connector(request, connector_id)
    return render(request, "certificates/connector.html", _page(request, connector))


def _refused(request, connector, error: services.CertificateError, form, field=None):
    """The page again with the refusal next to the field it is about (or atop its form)."""
    form.add_error(field, f"{error.message[:1].upper()}{error.message[1:]}.")
    forms_with_errors = {FORM_NAMES[type(form)]: form}
    if isinstance(form, VerificationForm):
        forms_with_errors["verifying"] = form.anchor_id
    return render(
        request,
        "certificates/connector.html",
        _page(request, connector, **forms_with_errors),
        status=status_of(error),
    )


FORM_NAMES = {
    AuthorityForm: "authority_form",
    IssueForm: "issue_form",
    TrustAnchorForm: "anchor_form",
    VerificationForm: "verification_form",
}


def _issue_field(error: services.CertificateError, data: dict) -> str | None:
    """Which field of the issue form a refusal is about; None for the form as a whole."""
    message = error.message.lower()
    if message.startswith("serial"):
        return "serial"
    if "csr" in message or (data["csr"] and isinstance(error, services.InvalidInput)):
        return "csr"
    if "common name" in message or "cn" in message.split():
        return "name"
    return None


@maker_required
@require_POST
def authority_create(request, connector_id):
    connector = get_connector(request, connector_id)
    form = AuthorityForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "certificates/connector.html",
            _page(request, connector, authority_form=form),
            status=400,
        )
    try:
        services.create_authority(
            connector,
            key_type=form.cleaned_data["key_type"],
            subject=form.cleaned_data["subject"],
            **_audit(request),
        )
    except services.CertificateError as exc:
        field = "subject" if isinstance(exc, services.InvalidInput) else None
        return _refused(request, connector, exc, form, field)
    messages.success(request, "Certificate authority created.")
    return redirect("certificates:connector", connector.pk)


@maker_required
@require_POST
def issue(request, connector_id):
    """Issue one device certificate, then show it on its own page (post/redirect/get)."""
    connector = get_connector(request, connector_id)
    form = IssueForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "certificates/connector.html",
            _page(request, connector, issue_form=form),
            status=400,
        )
    data = form.cleaned_data
    try:
        issued = services.issue_certificate(
            services.require_authority(connector),
            common_name=data["name"],
            serial=data["serial"],
            csr=data["csr"],
            key_type=data["key_type"],
            **_audit(request),
        )
    except services.CertificateError as exc:
        return _refused(request, connector, exc, form, _issue_field(exc, data))
    files.keep_key_for_one_view(request, issued)
    return redirect("certificates:issued", connector.pk, issued.certificate.pk)


@maker_required
@require_POST
def revoke(request, connector_id, fingerprint):
    connector = get_connector(request, connector_id)
    try:
        identities = services.revoke_certificate(connector, fingerprint, **_audit(request))
    except services.CertificateError as exc:
        messages.error(request, exc.message)
    else:
        owners = f" (device {', '.join(identities)})" if identities else ""
        messages.success(request, f"Certificate revoked{owners}; it is refused from now on.")
    return redirect(_back(request, connector))


def _back(request, connector) -> str:
    """Where a portal action returns to: the page it came from, if it is ours."""
    target = request.POST.get("next", "")
    if target.startswith(f"/connectors/{connector.pk}/") and "//" not in target:
        return target
    return reverse("certificates:connector", args=[connector.pk])


@maker_required
@require_GET
def device_certificates(request, connector_id, device_id):
    """One device's certificates: serial, fingerprint, validity, state, with revoke buttons."""
    connector = get_connector(request, connector_id)
    device = get_object_or_404(Device, connector=connector, pk=device_id)
    credentials = device.credentials.filter(kind=Connector.CERTIFICATE).order_by("-id")
    issuers = {
        anchor.fingerprint: anchor for anchor in TrustAnchor.objects.filter(connector=connector)
    }
    authority = services.authority_of(connector)
    revoked = set(
        RevokedCertificate.objects.filter(
            connector=connector, fingerprint__in=[c.fingerprint for c in credentials]
        ).values_list("fingerprint", flat=True)
    )
    rows = []
    for credential in credentials:
        if not credential.issuer_fingerprint:
            issuer = "pinned (no CA)"
        elif authority and credential.issuer_fingerprint == authority.fingerprint:
            issuer = "connector CA"
        elif credential.issuer_fingerprint in issuers:
            issuer = f"trust anchor {issuers[credential.issuer_fingerprint]}"
        else:
            issuer = "a CA no longer on this connector"
        rows.append(
            {
                "credential": credential,
                "issuer": issuer,
                "can_revoke": credential.fingerprint not in revoked,
            }
        )
    context = connector_context(request, connector, "devices")
    context.update(device=device, rows=rows, now=timezone.now())
    return render(request, "certificates/device.html", context)


@maker_required
@require_POST
def anchor_add(request, connector_id):
    connector = get_connector(request, connector_id)
    form = TrustAnchorForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "certificates/connector.html",
            _page(request, connector, anchor_form=form),
            status=400,
        )
    try:
        anchor = services.add_trust_anchor(
            connector,
            form.cleaned_data["certificate"],
            name=form.cleaned_data["name"],
            **_audit(request),
        )
    except services.CertificateError as exc:
        return _refused(request, connector, exc, form, "certificate")
    messages.success(
        request,
        f"Trust anchor uploaded. Prove you hold its key with a certificate whose CN is "
        f"{anchor.verification_code}.",
    )
    return redirect(reverse("certificates:connector", args=[connector.pk]) + f"#anchor-{anchor.pk}")


@maker_required
@require_POST
def anchor_verify(request, connector_id, anchor_id):
    connector = get_connector(request, connector_id)
    anchor = get_object_or_404(TrustAnchor, connector=connector, pk=anchor_id)
    form = VerificationForm(request.POST)
    form.anchor_id = anchor.pk
    if not form.is_valid():
        return render(
            request,
            "certificates/connector.html",
            _page(request, connector, verification_form=form, verifying=anchor.pk),
            status=400,
        )
    try:
        services.verify_trust_anchor(anchor, form.cleaned_data["certificate"], **_audit(request))
    except services.CertificateError as exc:
        return _refused(request, connector, exc, form, "certificate")
    messages.success(
        request, f"Trust anchor {anchor} verified: its device certificates are trusted."
    )
    return redirect("certificates:connector", connector.pk)


ANCHOR_ACTIONS = ("enable", "disable", "delete")


@maker_required
@require_POST
def anchor_action(request, connector_id, anchor_id, action):
    connector = get_connector(request, connector_id)
    anchor = get_object_or_404(TrustAnchor, connector=connector, pk=anchor_id)
    if action not in ANCHOR_ACTIONS:
        raise Http404("no such action")
    if action == "delete":
        services.delete_trust_anchor(anchor, **_audit(request))
        messages.success(request, f"Trust anchor {anchor} deleted.")
    else:
        services.set_trust_anchor_enabled(anchor, action == "enable", **_audit(request))
        messages.success(request, f"Trust anchor {anchor} {action}d.")
    return redirect("certificates:connector", connector.pk)
