"""Certificate issuance per second, next to the bare `cryptography` calls it is made of.

    .venv/bin/python bench/certificates.py [--seconds 2]

For a P-256 CA and an RSA-2048 CA, times `certificates.services.issue_certificate`
(unseal the CA key, build and sign, write the ledger row and the event) with a
key generated here and from a device's CSR, and in the same run the bare calls:
key generation plus CertificateBuilder.sign, and CSR load, signature check plus
sign. The gap is Gatehouse's own cost (database rows, key unsealing, checks).

Uses a throwaway SQLite database under a temporary directory unless
DATABASE_URL is set. RSA keys are generated only in the RSA "generated key"
rows: device requests never generate keys, and issuance does so only when
asked for a key without a CSR.
"""

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))


def rate(function, seconds: float) -> float:
    """Calls per second of `function` over about `seconds` (at least 3 calls)."""
    function()  # warm caches (the unsealed CA key, prepared statements)
    count, started = 0, time.perf_counter()
    while True:
        function()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 3:
            return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="gatehouse-bench-certs-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3")
    os.environ.setdefault("GATEHOUSE_VAR_DIR", scratch)
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("CA_KEY_ENCRYPTION_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from certificates import services
    from certificates.models import EC_P256, RSA_2048
    from connectors.models import Connector
    from core import crypto

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench")

    def csr_pem(key_type: str) -> str:
        key = crypto.generate_key(key_type)
        request = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(crypto.parse_subject("/CN=00000001"))
            .sign(key, hashes.SHA256())
        )
        return request.public_bytes(serialization.Encoding.PEM).decode()

    print(f"{'scenario':<44} {'Gatehouse/s':>12} {'bare/s':>10} {'Gatehouse cost':>15}")
    for ca_type in (EC_P256, RSA_2048):
        connector = Connector.objects.create(name=f"bench {ca_type}", owner=user)
        authority = services.create_authority(connector, key_type=ca_type)
        for device_type in (EC_P256, RSA_2048):
            for label, ours, bare in scenarios(authority, device_type, csr_pem(device_type)):
                ours_rate = rate(ours, args.seconds)
                bare_rate = rate(bare, args.seconds)
                cost_ms = (1 / ours_rate - 1 / bare_rate) * 1000
                name = f"CA {ca_type}, device {device_type}, {label}"
                print(f"{name:<44} {ours_rate:>12.1f} {bare_rate:>10.1f} {cost_ms:>12.2f} ms")


def scenarios(authority, device_type: str, request_pem: str):
    """(label, Gatehouse call, bare cryptography call) for one CA and device key type."""
    from cryptography import x509
    from django.utils import timezone

    from certificates import services
    from core import crypto

    ca_cert = services.authority_certificate(authority)
    ca_key = services.authority_private_key(authority)

    def sign(public_key):
        now = timezone.now()
        crypto.build_device_certificate(
            ca_cert=ca_cert,
            ca_key=ca_key,
            public_key=public_key,
            common_name="00000001",
            serial=x509.random_serial_number(),
            not_before=now,
            not_after=now + crypto.BACKDATE,
        )

    def bare_generated():
        sign(crypto.generate_key(device_type).public_key())

    def bare_csr():
        sign(crypto.load_csr(request_pem).public_key())

    def issue_generated():
        services.issue_certificate(authority, common_name="00000001", key_type=device_type)

    def issue_csr():
        services.issue_certificate(authority, csr=request_pem)

    return [
        ("generated key", issue_generated, bare_generated),
        ("CSR", issue_csr, bare_csr),
    ]


if __name__ == "__main__":
    main()
