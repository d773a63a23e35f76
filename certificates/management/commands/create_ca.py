"""Create a connector's root CA from the command line (a device maker's vendor root CA)."""

from django.core.management.base import BaseCommand, CommandError

from audit.events import Actor
from certificates import services
from certificates.models import EC_P256, RSA_2048
from connectors.models import Connector


class Command(BaseCommand):
    help = (
        "Create the certificate authority of a connector (EC P-256 unless --rsa), e.g. "
        "create_ca dt… --subject /C=US/ST=California/O=MyOrg/OU=MyDep/CN=MyDevAuthority"
    )

    def add_arguments(self, parser):
        parser.add_argument("connector_id")
        parser.add_argument("--subject", default="", help="openssl-style /C=../O=../CN=..")
        parser.add_argument("--rsa", action="store_true", help="RSA-2048 instead of EC P-256")
        parser.add_argument("--days", type=int, default=None, help="validity (default 3650)")

    def handle(self, *args, **options):
        connector = Connector.objects.filter(pk=options["connector_id"]).first()
        if connector is None:
            raise CommandError(f"no connector {options['connector_id']!r}")
        try:
            authority = services.create_authority(
                connector,
                key_type=RSA_2048 if options["rsa"] else EC_P256,
                subject=options["subject"],
                days=options["days"],
                actor=Actor(None, "manage.py create_ca"),
            )
        except services.CertificateError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(authority.certificate_pem, ending="")
        self.stderr.write(
            f"Created the CA of {connector} ({authority.get_key_type_display()}), "
            f"fingerprint {authority.fingerprint}.\n"
            f"Its certificate is at /pki/{connector.pk}/ca.pem and its CRL at "
            f"/pki/{connector.pk}/crl. The private key stays in the database, "
            "encrypted under CA_KEY_ENCRYPTION_KEY."
        )
