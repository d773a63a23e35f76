"""Simultaneous first generates on a connector without a CA create exactly one CA
(PostgreSQL: real concurrent transactions)."""

import base64
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from django.db import connection

from audit.models import Event
from certificates.models import CertificateAuthority, IssuedCertificate
from tests.support.clients import bearer_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CALLERS = 6


def test_simultaneous_first_generates_create_one_ca_and_sign_every_certificate_with_it(
    make_connector, owner
):
    connector = make_connector(auth_mode="certificate")
    barrier = threading.Barrier(CALLERS)

    def generate():
        client = bearer_client(owner)
        try:
            barrier.wait(timeout=60)
            response = client.post(
                f"/c/{connector.pk}/foundry/certificates/generate", {"key_type": "ec-p256"}
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        futures = [pool.submit(generate) for _ in range(CALLERS)]
        results = [future.result(timeout=120) for future in futures]

    assert [status for status, _ in results] == [200] * CALLERS, results
    authority = CertificateAuthority.objects.get(connector=connector)
    ca = x509.load_pem_x509_certificate(authority.certificate_pem.encode())
    for _, body in results:
        x509.load_pem_x509_certificate(base64.b64decode(body["cert"])).verify_directly_issued_by(ca)
    assert IssuedCertificate.objects.filter(authority=authority).count() == CALLERS
    created = Event.objects.filter(reason__startswith="certificate authority created")
    assert created.count() == 1
