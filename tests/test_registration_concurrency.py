"""Pairing guesses in concurrent bursts (§3.3): every limit is spent before the guess is
judged, so a burst never gets more guesses than the limit, however many arrive at once.

Threads post to the real /pair/ URL, each with its own clients and database connection,
on PostgreSQL and Redis (the production setup, where a burst spreads over processes).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from devices.models import Event
from tests.secure_devices import registration, serial_suffix_of

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BURST = 64
# Each thread holds a database connection; the PostgreSQL server is shared with other
# work, so the burst comes from fewer threads than requests, each sending two at once.
THREADS = 32
WRONG = "No device waiting to be paired matches"


def wrong_pin(pin: str, number: int) -> str:
    """A valid PIN that is not `pin`: its first two characters spell out `number`."""
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ"
    guess = alphabet[number % len(alphabet)] + alphabet[number // len(alphabet)] + pin[2:]
    return guess if guess != pin else "22" + pin[2:]


def guess_all_at_once(browsers: list[Client], guesses: list[dict]) -> list[int]:
    """Each browser posts its guess to /pair/: THREADS threads, released together, each
    posting its share back to back. Returns the status of each guess."""
    barrier = threading.Barrier(THREADS)
    shares = [list(zip(browsers, guesses, strict=True))[n::THREADS] for n in range(THREADS)]

    def guess(share):
        try:
            barrier.wait(timeout=60)
            statuses = []
            for browser, form in share:
                response = browser.post("/pair/", form)
                if response.status_code == 200:
                    assert WRONG in response.content.decode()
                statuses.append(response.status_code)
            return statuses
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        futures = [pool.submit(guess, share) for share in shares]
        return [status for future in futures for status in future.result(timeout=300)]


def signed_in(user) -> Client:
    browser = Client()
    browser.force_login(user)
    return browser


def test_a_burst_of_wrong_guesses_by_one_user_gets_exactly_the_users_allowance(
    secure_client, secure_connector, device_certificate, alice, settings
):
    # The registration takes any number of guesses, so only the user's allowance
    # stops them, and its count shows how many guesses were judged.
    settings.PAIRING_MAX_ATTEMPTS = 1000
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    suffix = serial_suffix_of(device_certificate)
    browsers = [signed_in(alice) for _ in range(BURST)]
    guesses = [{"pin": wrong_pin(started["pin"], n), "serial_suffix": suffix} for n in range(BURST)]

    statuses = guess_all_at_once(browsers, guesses)

    allowance = int(settings.RATE_LIMIT_PAIRING_FAILURES.split("/")[0])
    judged = registration(started["rid"]).failed_attempts
    print(
        f"\n{BURST} concurrent wrong guesses by one user: {judged} judged, "
        f"{statuses.count(200)} answered as wrong, {statuses.count(429)} refused with 429 "
        f"(allowance {allowance})"
    )
    assert sorted(statuses) == [200] * allowance + [429] * (BURST - allowance)
    assert judged == allowance
    assert (
        Event.objects.filter(kind="pair_failed", reason__contains="wrong PIN").count() == allowance
    )


def test_a_burst_of_guesses_from_many_accounts_locks_the_registration_after_the_limit(
    secure_client, secure_connector, device_certificate, django_user_model, settings
):
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    suffix = serial_suffix_of(device_certificate)
    # One account per guess, so only the registration's own count stops them.
    browsers = [
        signed_in(django_user_model.objects.create_user(f"guesser{n}")) for n in range(BURST)
    ]
    guesses = [
        {
            "pin": wrong_pin(started["pin"], n),
            "serial_suffix": suffix,
        }
        for n in range(BURST)
    ]

    statuses = guess_all_at_once(browsers, guesses)

    assert statuses == [200] * BURST
    locked = registration(started["rid"])
    counted = Event.objects.filter(
        kind="pair_failed", reason__contains=f"for registration {started['rid']}"
    ).count()
    print(
        f"\n{BURST} concurrent wrong guesses from {BURST} accounts: {locked.failed_attempts} "
        f"counted against the registration, {counted} logged "
        f"(limit {settings.PAIRING_MAX_ATTEMPTS})"
    )
    assert locked.failed_attempts == settings.PAIRING_MAX_ATTEMPTS == counted
    assert locked.locked_at is not None
    # The right PIN is refused now: the device must start again.
    owner = signed_in(django_user_model.objects.create_user("rightful-owner"))
    response = owner.post(
        "/pair/",
        {"pin": started["pin"], "serial_suffix": suffix},
    )
    assert "locked after too many wrong guesses" in response.content.decode()
