"""Revocation: a certificate refused for good on its connector, and on its CA's CRL."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import Actor
from certificates.models import IssuedCertificate, RevokedCertificate
from certificates.services.authority import write_crl
from certificates.services.base import Conflict, NotFound, log_certificate_event
from connectors.models import Connector
from devices.models import Credential, Device
from devices.services.credentials import credentials_changed


def revoke_certificate(
    connector: Connector, fingerprint: str, *, actor: Actor | None = None, ip=None
) -> list[str]:
    """Revoke a certificate known to the connector, by its SHA-256 fingerprint, for good.

    Every device credential made from it is revoked, so the next request with it
    fails, and it is never accepted again on this connector (not even after a
    device reset). When the connector's CA issued it, it goes on the CRL.
    Returns the identities of the devices it belonged to.
    """
    fingerprint = (fingerprint or "").strip().lower()
    now = timezone.now()
    with transaction.atomic():
        issued = (
            IssuedCertificate.objects.select_for_update()
            .select_related("authority")
            .filter(authority__connector=connector, fingerprint=fingerprint)
            .first()
        )
        credentials = Credential.objects.filter(
            device__connector=connector, kind=Connector.CERTIFICATE, fingerprint=fingerprint
        )
        identities = sorted(set(credentials.values_list("device__identity", flat=True)))
        if issued is None and not identities:
            raise NotFound("no certificate with that fingerprint on this connector")
        serial = issued.serial if issued else credentials.values_list("serial", flat=True)[0]
        try:
            with transaction.atomic():
                RevokedCertificate.objects.create(
                    connector=connector, fingerprint=fingerprint, serial=serial
                )
        except IntegrityError as exc:
            raise Conflict("the certificate is already revoked") from exc
        credentials.exclude(state=Credential.REVOKED).update(
            state=Credential.REVOKED, revoked_at=now
        )
        credentials_changed(
            "certificate_revoked",
            connector.pk,
            Device.objects.filter(connector=connector, identity__in=identities).only(
                "pk", "identity"
            ),
        )
        if issued is not None:
            IssuedCertificate.objects.filter(pk=issued.pk).update(
                state=IssuedCertificate.REVOKED, revoked_at=now, device=None
            )
            write_crl(issued.authority, now)
        label = f"certificate serial {serial} ({fingerprint[:16]}…) revoked"
        for identity in identities or [""]:
            log_certificate_event(connector.pk, identity, label, actor=actor, ip=ip)
    return identities


def is_revoked(connector: Connector, fingerprint: str) -> bool:
    """Whether the certificate was revoked on this connector (one indexed lookup)."""
    return RevokedCertificate.objects.filter(connector=connector, fingerprint=fingerprint).exists()
