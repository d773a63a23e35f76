"""Connector CAs, device certificates, trust anchors and their revocation.

Plain functions raising `CertificateError`s; the management API, the
self-provisioning dialect, the portal and the management commands map those
to what their callers expect. Every change writes an event on the connector.
The functions live in modules by job and are all importable from here.
"""

from certificates.services.authority import (
    CA_DAYS,
    authority_certificate,
    authority_of,
    authority_private_key,
    create_authority,
    current_crl,
    default_ca_subject,
    ensure_authority,
    require_authority,
)
from certificates.services.base import (
    CertificateError,
    Conflict,
    InvalidInput,
    KeyUnavailable,
    NoAuthority,
    NotFound,
    TooManyRequests,
)
from certificates.services.binding import (
    check_fingerprint,
    find_device,
    find_issued,
    provision_certificate,
    revoke_device_certificate,
)
from certificates.services.issuing import (
    DEVICE_CERTIFICATE_DAYS,
    GENERATED_COMMON_NAME,
    Issued,
    check_topics,
    generate_certificate,
    is_generated_name,
    issue_certificate,
    parse_serial,
)
from certificates.services.revocation import is_revoked, revoke_certificate
from certificates.services.trust import (
    add_trust_anchor,
    chains_to_connector,
    delete_trust_anchor,
    has_trust,
    issuer_still_trusted,
    set_trust_anchor_enabled,
    trusted_issuer,
    verify_trust_anchor,
)

__all__ = [
    "CA_DAYS",
    "DEVICE_CERTIFICATE_DAYS",
    "GENERATED_COMMON_NAME",
    "CertificateError",
    "Conflict",
    "InvalidInput",
    "Issued",
    "KeyUnavailable",
    "NoAuthority",
    "NotFound",
    "TooManyRequests",
    "add_trust_anchor",
    "authority_certificate",
    "authority_of",
    "authority_private_key",
    "chains_to_connector",
    "check_fingerprint",
    "check_topics",
    "create_authority",
    "current_crl",
    "default_ca_subject",
    "delete_trust_anchor",
    "ensure_authority",
    "find_device",
    "find_issued",
    "generate_certificate",
    "has_trust",
    "is_generated_name",
    "is_revoked",
    "issue_certificate",
    "issuer_still_trusted",
    "parse_serial",
    "provision_certificate",
    "require_authority",
    "revoke_certificate",
    "revoke_device_certificate",
    "set_trust_anchor_enabled",
    "trusted_issuer",
    "verify_trust_anchor",
]
