"""Issue a device certificate by serial number and device name."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.events import Actor
from certificates import services
from certificates.models import EC_P256, RSA_2048
from connectors.models import Connector


class Command(BaseCommand):
    help = (
        "Issue a client certificate signed by the connector's CA: issue_certificate dt… "
        "<serial> <name>. Writes <name>-cert.pem, and <name>-key.pem unless --csr is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("connector_id")
        parser.add_argument("serial", help='decimal, hex starting 0x, or "random"')
        parser.add_argument("name", help="the device name: its identity, the subject CN")
        parser.add_argument("--csr", type=Path, help="sign this CSR; the key stays on the device")
        parser.add_argument("--rsa", action="store_true", help="generate RSA-2048, not P-256")
        parser.add_argument("--days", type=int, default=None, help="validity (default 3650)")
        parser.add_argument("--out-dir", type=Path, default=Path("."))

    def handle(self, *args, **options):
        connector = Connector.objects.filter(pk=options["connector_id"]).first()
        if connector is None:
            raise CommandError(f"no connector {options['connector_id']!r}")
        csr = ""
        if options["csr"]:
            try:
                csr = options["csr"].read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {options['csr']}: {exc}") from exc
        serial = None if options["serial"].lower() == "random" else options["serial"]
        try:
            issued = services.issue_certificate(
                services.require_authority(connector),
                common_name=options["name"],
                serial=serial,
                csr=csr,
                key_type=RSA_2048 if options["rsa"] else EC_P256,
                days=options["days"],
                actor=Actor(None, "manage.py issue_certificate"),
            )
        except services.CertificateError as exc:
            raise CommandError(exc.message) from exc
        out_dir = options["out_dir"]
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in options["name"])
        cert_file = out_dir / f"{stem}-cert.pem"
        cert_file.write_text(issued.certificate.certificate_pem)
        written = [str(cert_file)]
        if issued.private_key_pem:
            key_file = out_dir / f"{stem}-key.pem"
            key_file.touch(mode=0o600)
            key_file.chmod(0o600)
            key_file.write_text(issued.private_key_pem)
            written.append(str(key_file))
        certificate = issued.certificate
        self.stdout.write(
            f"Issued serial {certificate.serial} (hex) for CN={certificate.common_name}, "
            f"fingerprint {certificate.fingerprint}: {', '.join(written)}"
        )
