"""Issuing device certificates from a connector's CA: by name and serial, or generated
for an app that binds them to a device later."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography import x509
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.events import Actor
from certificates.models import EC_P256, CertificateAuthority, IssuedCertificate
from certificates.services.authority import (
    authority_certificate,
    authority_private_key,
    check_days,
    check_key_type,
    ensure_authority,
)
from certificates.services.base import (
    Conflict,
    InvalidInput,
    TooManyRequests,
    log_certificate_event,
)
from certificates.topics import InvalidTopicFilter, check_topic_filters
from connectors.models import Connector
from core import crypto, ratelimit

DEVICE_CERTIFICATE_DAYS = 3650
# Certificates generated for an app get this name and a random suffix: unique, so a
# broker tells their devices apart, and with spaces, so never mistaken for an identity.
GENERATED_COMMON_NAME = "Gatehouse device certificate"


def generated_common_name() -> str:
    return f"{GENERATED_COMMON_NAME} {secrets.token_hex(16)}"


def is_generated_name(common_name: str) -> bool:
    """Whether a CN is one `generate_certificate` gave (it names no device by itself)."""
    return common_name.startswith(GENERATED_COMMON_NAME)


@dataclass
class Issued:
    """A certificate just issued; `private_key` only when Gatehouse made the key."""

    certificate: IssuedCertificate
    private_key: object | None = None

    @property
    def private_key_pem(self) -> str | None:
        """The generated key as PKCS#8 PEM, or None when the device kept its key."""
        return crypto.private_key_pem(self.private_key) if self.private_key else None


def parse_serial(value) -> int | None:
    """A serial number as decimal digits or 0x-prefixed hex; None picks a random one."""
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip().lower()
        try:
            number = int(text[2:], 16) if text.startswith("0x") else int(text, 10)
        except ValueError as exc:
            raise InvalidInput(
                "serial is a positive number: decimal digits, or hex starting 0x"
            ) from exc
    if not 0 < number < 2**159:
        raise InvalidInput("serial must be positive and fit in 20 bytes")
    return number


def issue_certificate(
    authority: CertificateAuthority,
    *,
    common_name: str = "",
    serial=None,
    csr: str = "",
    key_type: str = EC_P256,
    days=None,
    state: str = IssuedCertificate.ACTIVE,
    topics: list | None = None,
    actor: Actor | None = None,
    ip=None,
) -> Issued:
    """Issue a device certificate by serial number and name (the CN).

    With `csr` the device keeps its private key and only its public key is
    signed; without, a key is generated here (EC P-256 unless RSA is asked for)
    and returned once, never stored.
    """
    serial_number = parse_serial(serial)
    days = check_days(days, DEVICE_CERTIFICATE_DAYS)
    private_key = None
    if csr:
        try:
            request = crypto.load_csr(csr)
        except crypto.CryptoError as exc:
            raise InvalidInput(str(exc)) from exc
        public_key = request.public_key()
        requested = ""
        if request.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME):
            try:
                requested = crypto.common_name_of(request.subject)
            except crypto.CryptoError as exc:
                raise InvalidInput(f"CSR: {exc}") from exc
        if common_name and requested and common_name.strip() != requested:
            raise InvalidInput(f'the CSR asks for CN "{requested}", not "{common_name.strip()}"')
        common_name = common_name or requested
    else:
        private_key = crypto.generate_key(check_key_type(key_type))
        public_key = private_key.public_key()
    try:
        common_name = crypto.check_common_name(common_name)
    except crypto.CryptoError as exc:
        raise InvalidInput(str(exc)) from exc

    ca_cert = authority_certificate(authority)
    ca_key = authority_private_key(authority)
    now = timezone.now()
    if authority.not_after <= now:
        raise Conflict("the certificate authority has expired")
    not_after = min(now + timedelta(days=days), authority.not_after)
    cert = crypto.build_device_certificate(
        ca_cert=ca_cert,
        ca_key=ca_key,
        public_key=public_key,
        common_name=common_name,
        serial=serial_number or x509.random_serial_number(),
        not_before=max(now - crypto.BACKDATE, authority.not_before),
        not_after=not_after,
    )
    try:
        with transaction.atomic():
            issued = IssuedCertificate.objects.create(
                authority=authority,
                serial=crypto.serial_hex(cert),
                common_name=common_name,
                fingerprint=crypto.fingerprint(cert),
                certificate_pem=crypto.to_pem(cert),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                state=state,
                topics=topics or [],
            )
            how = "from a CSR" if private_key is None else "with a generated key"
            log_certificate_event(
                authority.connector_id,
                "" if is_generated_name(common_name) else common_name,
                f"issued certificate serial {issued.serial} for CN={common_name} {how}",
                actor=actor,
                ip=ip,
            )
    except IntegrityError as exc:
        raise Conflict(f"serial {crypto.serial_hex(cert)} was already issued by this CA") from exc
    return Issued(issued, private_key)


def check_topics(topics) -> list[str]:
    """The MQTT topic filters a certificate may use, each valid, without repeats."""
    try:
        return check_topic_filters(topics)
    except InvalidTopicFilter as exc:
        raise InvalidInput(f"topics: {exc}") from exc


def generate_certificate(
    connector: Connector,
    *,
    topics: list | None = None,
    key_type: str = EC_P256,
    actor: Actor | None = None,
    ip=None,
) -> Issued:
    """A new certificate and key for an app, under a unique name; inactive unless `topics`
    is given. The connector's CA is created on first use."""
    cleaned = check_topics(topics) if topics is not None else None
    key_type = check_key_type(key_type)
    # A generated RSA key costs a tenth of a second of CPU: bounded per connector.
    rate = ratelimit.Rate.parse(settings.RATE_LIMIT_CERTIFICATE_GENERATE)
    try:
        ratelimit.spend("certificate-generate", connector.pk, rate)
    except ratelimit.RateLimited as exc:
        raise TooManyRequests(exc.retry_after) from None
    return issue_certificate(
        ensure_authority(connector, actor=actor, ip=ip),
        common_name=generated_common_name(),
        key_type=key_type,
        state=IssuedCertificate.ACTIVE if cleaned is not None else IssuedCertificate.INACTIVE,
        topics=cleaned,
        actor=actor,
        ip=ip,
    )
