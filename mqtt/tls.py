"""The broker's TLS files: a server certificate for a laptop or test broker, and the
device CA list (every connector's CA and trusted anchors) with their CRLs.

Production brokers use a server certificate from the operator's own CA or a
public one; `server_files` is for `make run`, the tests and bench.
"""

from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.utils import timezone

from certificates.models import EC_P256
from core import crypto
from mqtt.broker import TlsFiles

SERVER_DAYS = 30


def server_files(folder: Path, hostnames=("localhost", "127.0.0.1")) -> tuple[TlsFiles, Path]:
    """A throwaway CA and a server certificate it signed; (files, the CA file clients trust)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    ca_key = crypto.generate_key(EC_P256)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gatehouse broker CA")])
    ca_cert = crypto.build_ca_certificate(ca_key, ca_name, now, SERVER_DAYS)
    key = crypto.generate_key(EC_P256)
    names = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - crypto.BACKDATE)
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "server-ca.pem"
    ca_path.write_text(crypto.to_pem(ca_cert))
    certfile = folder / "server.pem"
    certfile.write_text(crypto.to_pem(cert))
    keyfile = folder / "server.key"
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    keyfile.chmod(0o600)
    return TlsFiles(certfile=certfile, keyfile=keyfile), ca_path


def _replace(path: Path, content: bytes) -> bool:
    """Write `content` to `path` atomically; False when it already held it."""
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".new")
    temporary.write_bytes(content)
    temporary.replace(path)
    return True


def write_trust(cafile: Path, crlfile: Path | None = None) -> bool:
    """Write every connector's CA and trusted anchor to `cafile` and the CAs' CRLs to
    `crlfile` (PEM), for the broker's certificate listener; True if either changed
    (then the broker must reload: SIGHUP keeps its sessions).

    The broker checks the chain and the CRL; which device a certificate admits is
    the broker client Gatehouse made for it (mqtt.clients).
    """
    from certificates.models import CertificateAuthority, TrustAnchor
    from certificates.services import current_crl

    authorities = list(CertificateAuthority.objects.order_by("pk"))
    pems = [authority.certificate_pem for authority in authorities]
    pems += [
        anchor.certificate_pem
        for anchor in TrustAnchor.objects.filter(enabled=True, verified_at__isnull=False)
    ]
    changed = _replace(cafile, "".join(pem.rstrip("\n") + "\n" for pem in pems).encode())
    if crlfile is not None:
        crls = b"".join(
            x509.load_der_x509_crl(current_crl(authority)).public_bytes(serialization.Encoding.PEM)
            for authority in authorities
        )
        changed = _replace(crlfile, crls) or changed
    return changed
