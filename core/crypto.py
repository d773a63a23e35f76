"""The cryptography underneath certificates, pinning and TLS, with no database in sight.

Keys, names, certificate and CRL building, CSR and PEM parsing, and the sealing
of CA private keys under CA_KEY_ENCRYPTION_KEY (AES-256-GCM with a key derived
by HKDF, bound to the CA it belongs to).
"""

import functools
import hashlib
import os
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The key types a CA or an issued certificate may have (certificates.models stores them).
EC_P256 = "ec-p256"
RSA_2048 = "rsa-2048"

SEALED_FORMAT = b"\x01"
# A certificate made a little in the past still works on a device whose clock
# lags the server's by a few minutes (otherwise it reads as not yet valid there).
BACKDATE = timedelta(minutes=5)
MAX_COMMON_NAME = 64  # X.509 upper bound for a CN


class CryptoError(ValueError):
    """Input that is not the certificate, CSR or key it should be; the message says why."""


class SealingKeyMismatch(RuntimeError):
    """The CA key was sealed under a different CA_KEY_ENCRYPTION_KEY."""


# --- keys ---------------------------------------------------------------------------


def generate_key(key_type: str):
    if key_type == RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    raise CryptoError(f"unknown key type {key_type!r}; use {EC_P256} or {RSA_2048}")


def private_key_pem(key, *, traditional: bool = False) -> str:
    """PKCS#8 PEM ("BEGIN PRIVATE KEY"), or with `traditional` the older per-algorithm
    form many device TLS stacks expect: PKCS#1 "BEGIN RSA PRIVATE KEY" for RSA, SEC 1
    "BEGIN EC PRIVATE KEY" for EC."""
    form = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode(
        "ascii"
    )


def check_public_key(public_key) -> None:
    """Accept the key kinds devices and TLS libraries agree on; refuse weak ones."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < 2048:
            raise CryptoError(f"RSA keys must be at least 2048 bits, not {public_key.key_size}")
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1 | ec.SECP384R1):
            raise CryptoError(f"EC keys must use P-256 or P-384, not {public_key.curve.name}")
    elif not isinstance(public_key, ed25519.Ed25519PublicKey):
        raise CryptoError("keys must be RSA (2048+ bits), EC P-256/P-384 or Ed25519")


def _signing_hash(private_key):
    # Ed25519 signs without a separate digest.
    return None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


# --- sealing CA keys ------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _sealing_key(secret: str) -> tuple[bytes, str]:
    """(AES key, key id) derived from CA_KEY_ENCRYPTION_KEY."""
    if len(secret) < 16:
        raise SealingKeyMismatch("CA_KEY_ENCRYPTION_KEY must be at least 16 characters")
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"gatehouse ca key sealing v1"
    ).derive(secret.encode())
    key_id = hashlib.sha256(b"gatehouse key id\0" + key).hexdigest()[:16]
    return key, key_id


def sealing_key_id(secret: str) -> str:
    return _sealing_key(secret)[1]


def seal_private_key(private_key, secret: str, bound_to: str) -> tuple[bytes, str]:
    """Encrypt a CA key; returns (sealed bytes, key id). `bound_to` names its CA."""
    key, key_id = _sealing_key(secret)
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, der, bound_to.encode())
    return SEALED_FORMAT + nonce + sealed, key_id


@functools.lru_cache(maxsize=64)
def unseal_private_key(sealed: bytes, key_id: str, secret: str, bound_to: str):
    """The CA key back from its sealed form; remembered so bulk issuance decrypts once."""
    key, current_id = _sealing_key(secret)
    if key_id != current_id:
        raise SealingKeyMismatch(
            "this CA's key was sealed under a different CA_KEY_ENCRYPTION_KEY "
            f"(key id {key_id}, configured {current_id})"
        )
    if sealed[:1] != SEALED_FORMAT:
        raise SealingKeyMismatch("unknown sealed key format")
    try:
        der = AESGCM(key).decrypt(sealed[1:13], sealed[13:], bound_to.encode())
    except InvalidTag as exc:
        raise SealingKeyMismatch("the sealed CA key does not decrypt: damaged or moved") from exc
    return serialization.load_der_private_key(der, password=None)


# --- names --------------------------------------------------------------------------

_SUBJECT_KEYS = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
}


def parse_subject(text: str) -> x509.Name:
    """An openssl-style subject, `/C=US/ST=California/O=MyOrg/OU=MyDep/CN=MyDevAuthority`."""
    text = (text or "").strip()
    if not text.startswith("/"):
        raise CryptoError("write the subject as /C=US/O=My Org/CN=My Device Authority")
    attributes = []
    for part in text.strip("/").split("/"):
        key, sep, value = part.partition("=")
        oid = _SUBJECT_KEYS.get(key.strip().upper())
        if not sep or oid is None:
            raise CryptoError(
                f"{part!r} is not KEY=value with KEY one of C, ST, L, O, OU, CN, emailAddress"
            )
        if not value.strip():
            raise CryptoError(f"{key} is empty")
        try:
            attributes.append(x509.NameAttribute(oid, value.strip()))
        except ValueError as exc:
            raise CryptoError(f"{key}: {exc}") from exc
    if not any(attribute.oid == NameOID.COMMON_NAME for attribute in attributes):
        raise CryptoError("the subject needs a CN")
    return x509.Name(attributes)


def common_name_of(name: x509.Name) -> str:
    """The one CN of a name; refuse none or several."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(values) != 1:
        raise CryptoError(
            "the subject has no CN" if not values else "the subject has more than one CN"
        )
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def check_common_name(common_name: str) -> str:
    common_name = (common_name or "").strip()
    if not common_name:
        raise CryptoError("the certificate needs a name (its subject CN)")
    if len(common_name) > MAX_COMMON_NAME:
        raise CryptoError(f"a certificate name (CN) is at most {MAX_COMMON_NAME} characters")
    return common_name


def issuer_key(name: x509.Name) -> str:
    """A lookup key for matching a certificate's issuer to a CA's subject."""
    return hashlib.sha256(name.rfc4514_string().lower().encode()).hexdigest()


# --- certificates ---------------------------------------------------------------------


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex: a certificate's id everywhere in Gatehouse."""
    return cert.fingerprint(hashes.SHA256()).hex()


def serial_hex(cert: x509.Certificate) -> str:
    """Lower-case hex, as credentials and registrations store it."""
    return format(abs(cert.serial_number), "x")


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate(text: str | bytes) -> x509.Certificate:
    """Exactly one PEM certificate, and no private key alongside it."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError as exc:
            raise CryptoError("not a PEM certificate (expected ASCII text)") from exc
    if "PRIVATE KEY" in text:
        raise CryptoError("that holds a private key; upload the certificate only")
    try:
        found = x509.load_pem_x509_certificates(text.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CryptoError("not a PEM certificate (-----BEGIN CERTIFICATE-----)") from exc
    if len(found) != 1:
        raise CryptoError(f"expected one certificate, found {len(found)}")
    return found[0]


def load_csr(text: str) -> x509.CertificateSigningRequest:
    """A PEM CSR whose signature proves the requester holds its key."""
    if "PRIVATE KEY" in (text or ""):
        raise CryptoError("that holds a private key; send the CSR only, keep the key on the device")
    try:
        csr = x509.load_pem_x509_csr((text or "").strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise CryptoError(
            "not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)"
        ) from exc
    if not csr.is_signature_valid:
        raise CryptoError("the CSR's signature does not verify")
    try:
        check_public_key(csr.public_key())
    except (ValueError, TypeError) as exc:
        raise CryptoError(str(exc)) from exc
    return csr


def is_ca_certificate(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def directly_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when `issuer`'s key signed `cert` and the names chain."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def valid_at(cert: x509.Certificate, when: datetime) -> bool:
    return cert.not_valid_before_utc <= when < cert.not_valid_after_utc


def build_ca_certificate(private_key, subject: x509.Name, now: datetime, days: int):
    public_key = private_key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, _signing_hash(private_key))
    )


def build_device_certificate(
    *,
    ca_cert: x509.Certificate,
    ca_key,
    public_key,
    common_name: str,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A TLS client certificate for one device, signed by the connector's CA."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, _signing_hash(ca_key))
    )


def build_crl(
    *,
    ca_cert: x509.Certificate,
    ca_key,
    number: int,
    now: datetime,
    next_update: datetime,
    revoked: list[tuple[int, datetime]],
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca_key, _signing_hash(ca_key))
