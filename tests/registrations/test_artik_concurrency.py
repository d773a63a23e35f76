"""A burst of ARTIK messages from one device, on PostgreSQL and Redis: the allowance is
spent atomically, so exactly the allowed number is stored however many arrive at once,
and every other answer is ARTIK's JSON 429."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from registrations.models import Message
from tests.support.secure_devices import SecureDeviceClient, register

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BURST = 48
THREADS = 16
ALLOWED = 10


def test_a_burst_of_messages_stores_exactly_the_allowance(
    secure_client, secure_connector, alice_browser, device_certificate, settings
):
    registered = register(secure_client, alice_browser, secure_connector)
    settings.RATE_LIMIT_MESSAGES = f"{ALLOWED}/60"
    barrier = threading.Barrier(THREADS)
    body = {"sdid": registered["did"], "data": {"n": 1}}
    headers = {"HTTP_AUTHORIZATION": f"bearer {registered['accessToken']}"}

    def send(count: int) -> list[tuple[int, dict]]:
        client = SecureDeviceClient(device_certificate)
        try:
            barrier.wait(timeout=60)
            answers = []
            for number in range(count):
                path = "/v1.1/messages" if number % 2 else "/v1.1/message"
                response = client.send_json("POST", path, body, **headers)
                answers.append((response.status_code, response.json()))
            return answers
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(send, BURST // THREADS) for _ in range(THREADS)]
        answers = [answer for future in futures for answer in future.result(timeout=300)]

    statuses = [status for status, _ in answers]
    assert statuses.count(200) == ALLOWED and statuses.count(429) == BURST - ALLOWED
    refused = [body for status, body in answers if status == 429]
    assert all(body["error"]["code"] == 429 for body in refused)
    assert Message.objects.count() == ALLOWED
