"""Portal pages for a connector's CA, trust anchors and device certificates, and the
public CA certificate and CRL.
"""

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET

from certificates import services
from certificates.models import CertificateAuthority


def _authority_or_404(connector_id: str) -> CertificateAuthority:
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
