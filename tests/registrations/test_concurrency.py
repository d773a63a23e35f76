"""Pairing guesses in concurrent bursts: every limit is spent before the guess is
judged, so a burst never gets more guesses than the limit, however many arrive at once.

Threads post to the real /pair/ URL, each with its own clients and database connection,
on PostgreSQL and Redis (the production setup, where a burst spreads over processes).
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from audit.models import Event
from registrations.models import PairingGuess, Registration
from tests.support.secure_devices import pair, registration, serial_suffix_of

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
    settings.PAIRING_MAX_ATTEMPTS_TOTAL = 20
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
        f"(limit {settings.PAIRING_MAX_ATTEMPTS_TOTAL})"
    )
    assert locked.failed_attempts == settings.PAIRING_MAX_ATTEMPTS_TOTAL == counted
    assert locked.locked_at is not None
    # The right PIN is refused now: the device must start again.
    owner = signed_in(django_user_model.objects.create_user("rightful-owner"))
    response = owner.post(
        "/pair/",
        {"pin": started["pin"], "serial_suffix": suffix},
    )
    assert "locked after too many wrong guesses" in response.content.decode()


def test_a_strangers_burst_at_a_registration_leaves_it_to_its_owner(
    secure_client, secure_connector, device_certificate, django_user_model, alice, settings
):
    # Only the stranger's share of the request stops them: their own limit is loose.
    settings.RATE_LIMIT_PAIRING_FAILURES = "1000/900"
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    suffix = serial_suffix_of(device_certificate)
    stranger = django_user_model.objects.create_user("stranger")
    browsers = [signed_in(stranger) for _ in range(BURST)]
    guesses = [{"pin": wrong_pin(started["pin"], n), "serial_suffix": suffix} for n in range(BURST)]

    statuses = guess_all_at_once(browsers, guesses)

    waiting = registration(started["rid"])
    share = PairingGuess.objects.get(registration=waiting, user=stranger).wrong
    print(
        f"\n{BURST} concurrent wrong guesses by one stranger at one registration: "
        f"{waiting.failed_attempts} counted (their share {settings.PAIRING_MAX_ATTEMPTS}), "
        f"status {waiting.status}"
    )
    assert statuses == [200] * BURST
    assert waiting.failed_attempts == share == settings.PAIRING_MAX_ATTEMPTS
    assert waiting.status == Registration.PENDING_USER_CONFIRMATION and waiting.locked_at is None
    assert Event.objects.filter(kind="pair_failed", reason__contains="stranger").count() == share
    assert pair(signed_in(alice), secure_connector, started["pin"], suffix).status_code == 302
    assert registration(started["rid"]).status == Registration.PENDING_DEVICE_COMPLETION


def test_a_burst_from_many_accounts_never_counts_past_either_cap(
    secure_client, secure_connector, device_certificate, django_user_model, settings
):
    # Eight accounts, eight guesses each: their shares (5 each, 40 together) exceed the
    # request's total cap, so both limits are under pressure at once.
    settings.RATE_LIMIT_PAIRING_FAILURES = "1000/900"
    settings.PAIRING_MAX_ATTEMPTS_TOTAL = 30
    started = secure_client.initiate(secure_connector, "a1b2c3d4").json()["data"]
    suffix = serial_suffix_of(device_certificate)
    accounts = [django_user_model.objects.create_user(f"guesser{n}") for n in range(8)]
    browsers = [signed_in(accounts[n % 8]) for n in range(BURST)]
    guesses = [{"pin": wrong_pin(started["pin"], n), "serial_suffix": suffix} for n in range(BURST)]

    statuses = guess_all_at_once(browsers, guesses)

    locked = registration(started["rid"])
    shares = list(PairingGuess.objects.filter(registration=locked).values_list("wrong", flat=True))
    counted = Event.objects.filter(
        kind="pair_failed", reason__contains=f"wrong PIN for registration {started['rid']}"
    ).count()
    print(
        f"\n{BURST} concurrent wrong guesses from 8 accounts: {locked.failed_attempts} counted "
        f"(cap {settings.PAIRING_MAX_ATTEMPTS_TOTAL}), shares {sorted(shares)} "
        f"(each at most {settings.PAIRING_MAX_ATTEMPTS})"
    )
    assert statuses == [200] * BURST
    assert locked.failed_attempts == settings.PAIRING_MAX_ATTEMPTS_TOTAL == sum(shares) == counted
    assert max(shares) <= settings.PAIRING_MAX_ATTEMPTS
    assert locked.status == Registration.EXPIRED and locked.locked_at is not None
