"""Password guessing on /login/ and /admin/login/: locked per account and address, per
address (an IPv6 client by its /64), and per account from everywhere at a higher limit."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.db.models import F, Sum
from django.test import Client, override_settings

from audit.models import Event
from core.net import PROXY_SECRET_META

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
ACCOUNT_LIMIT = 3 * LIMIT  # the default is 10 × LIMIT; smaller here to keep tests quick
ATTACKER = "198.51.100.7"
ELSEWHERE = "192.0.2.44"
SIGN_IN_PAGES = ["/login/", "/admin/login/"]


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True)


def sign_in(path, username, password, address=ATTACKER, client=None, **extra):
    client = client or Client()
    return client.post(
        path, {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )


def age_every_attempt(by: timedelta) -> None:
    """What the passing of time does to recorded failures."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


@pytest.mark.parametrize("path", SIGN_IN_PAGES)
def test_a_hundred_wrong_passwords_then_the_right_one_is_refused(staff, path):
    browser = Client()
    statuses = [
        sign_in(path, "staff", f"guess-{n}", client=browser).status_code for n in range(100)
    ]
    right = sign_in(path, "staff", "staff-pass-123", client=browser)

    assert statuses == [200] * (LIMIT - 1) + [429] * (100 - LIMIT + 1)
    assert right.status_code == 429
    assert "_auth_user_id" not in browser.session
    page = right.content.decode()
    # Every failure came from one address: it is locked, for every account.
    assert "Too many failed sign-in attempts for your address." in page
    assert "try again in 15 minutes" in page
    assert 14 * 60 < int(right["Retry-After"]) <= 15 * 60 + 1
    # Refused attempts were not counted (nor checked): the limit's worth, no more.
    assert AccessAttempt.objects.aggregate(total=Sum("failures_since_start"))["total"] == LIMIT


@pytest.mark.parametrize("path", SIGN_IN_PAGES)
def test_a_stranger_locks_only_their_own_address_out_of_an_account(staff, other_user, path):
    statuses = [sign_in(path, "staff", "wrong").status_code for _ in range(3 * LIMIT)]
    assert statuses == [200] * (LIMIT - 1) + [429] * (2 * LIMIT + 1)
    assert sign_in(path, "staff", "staff-pass-123").status_code == 429

    # The owner, from their own address, signs in (the admin too) however often the
    # stranger keeps trying; the stranger's address stays locked, for every account.
    browser = Client()
    assert (
        sign_in(path, "staff", "staff-pass-123", address=ELSEWHERE, client=browser).status_code
        == 302
    )
    assert "_auth_user_id" in browser.session
    assert sign_in("/login/", "other", "other-pass-123").status_code == 429


def test_the_account_from_every_address_locks_at_its_higher_limit(owner, other_user):
    assert settings.LOGIN_ACCOUNT_FAILURE_LIMIT == 10 * LIMIT
    with override_settings(LOGIN_ACCOUNT_FAILURE_LIMIT=ACCOUNT_LIMIT):
        # Spread so that no address nor (account, address) reaches the limit.
        statuses = [
            sign_in("/login/", "owner", "wrong", address=f"203.0.113.{n % 5 + 1}").status_code
            for n in range(ACCOUNT_LIMIT + 3)
        ]
        assert statuses == [200] * (ACCOUNT_LIMIT - 1) + [429] * 4

        refused = sign_in("/login/", "owner", "owner-pass-123", address=ELSEWHERE)
        assert refused.status_code == 429
        assert "Too many failed sign-in attempts for this account." in refused.content.decode()
        # No address went over the limit: another account signs in from them.
        assert (
            sign_in("/login/", "other", "other-pass-123", address="203.0.113.1").status_code == 302
        )
    checked = AccessAttempt.objects.aggregate(total=Sum("failures_since_start"))["total"]
    assert checked == ACCOUNT_LIMIT


def test_one_ipv6_network_spraying_from_many_addresses_is_locked(owner):
    network = "2001:db8:1:2"
    statuses = [
        sign_in(
            "/login/", f"user{n}", "Winter2026!", address=f"{network}::{n + 1:x}:{n * 7 + 1:x}"
        ).status_code
        for n in range(30)
    ]
    assert statuses == [200] * (LIMIT - 1) + [429] * (30 - LIMIT + 1)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {f"{network}::"}

    refused = sign_in("/login/", "owner", "owner-pass-123", address=f"{network}:ffff::1")
    assert refused.status_code == 429
    assert "for your address." in refused.content.decode()
    # The next /64 is someone else.
    assert (
        sign_in("/login/", "owner", "owner-pass-123", address="2001:db8:1:3::1").status_code == 302
    )
    # The event names the address seen, not the network counted.
    locked = Event.objects.get(kind=Event.AUTH_FAILED)
    assert locked.source_ip == f"{network}::a:40"


def test_an_ipv4_mapped_ipv6_address_is_counted_as_its_ipv4_address(owner):
    for n in range(LIMIT):
        sign_in("/login/", f"user{n}", "wrong")
    mapped = f"::ffff:{ATTACKER}"
    assert sign_in("/login/", "owner", "owner-pass-123", address=mapped).status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def test_one_address_spraying_a_password_over_many_accounts_is_locked(owner):
    statuses = [sign_in("/login/", f"user{n}", "Winter2026!").status_code for n in range(LIMIT + 5)]
    assert statuses == [200] * (LIMIT - 1) + [429] * 6

    refused = sign_in("/login/", "owner", "owner-pass-123")
    assert refused.status_code == 429
    assert "for your address." in refused.content.decode()
    # The accounts themselves are not locked: their owners sign in from elsewhere.
    assert sign_in("/login/", "owner", "owner-pass-123", address=ELSEWHERE).status_code == 302


def test_forged_forwarding_headers_do_not_spread_one_address(owner):
    for n in range(LIMIT):
        sign_in(
            "/login/",
            f"user{n}",
            "wrong",
            HTTP_X_FORWARDED_FOR=f"10.1.0.{n}",
            HTTP_X_REAL_IP=f"10.2.0.{n}",
        )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    assert (
        sign_in("/login/", "owner", "owner-pass-123", HTTP_X_REAL_IP="10.3.0.1").status_code == 429
    )


@override_settings(TRUSTED_PROXIES=["127.0.0.1"], PROXY_SHARED_SECRET="proxy-secret")
def test_behind_the_proxy_each_client_address_is_counted_on_its_own(owner):
    proxied = {"address": "127.0.0.1", PROXY_SECRET_META: "proxy-secret"}
    for n in range(LIMIT):
        sign_in("/login/", f"user{n}", "wrong", HTTP_X_REAL_IP=ATTACKER, **proxied)

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}
    locked = sign_in("/login/", "owner", "owner-pass-123", HTTP_X_REAL_IP=ATTACKER, **proxied)
    assert locked.status_code == 429
    fine = sign_in("/login/", "owner", "owner-pass-123", HTTP_X_REAL_IP=ELSEWHERE, **proxied)
    assert fine.status_code == 302


def test_the_lock_lifts_after_the_cool_off_and_refusals_do_not_extend_it(owner):
    for _ in range(LIMIT):
        sign_in("/login/", "owner", "wrong")
    age_every_attempt(timedelta(minutes=10))
    # Still locked 10 minutes on; refusals now must not restart the clock.
    assert [sign_in("/login/", "owner", "wrong").status_code for _ in range(3)] == [429] * 3
    assert sign_in("/login/", "owner", "owner-pass-123").status_code == 429

    age_every_attempt(timedelta(minutes=5, seconds=1))

    assert sign_in("/login/", "owner", "owner-pass-123").status_code == 302


def test_the_page_says_how_long_is_left(owner):
    for _ in range(LIMIT):
        sign_in("/login/", "owner", "wrong")
    age_every_attempt(timedelta(minutes=12, seconds=30))

    refused = sign_in("/login/", "owner", "owner-pass-123")

    assert "try again in 3 minutes" in refused.content.decode()
    assert 120 < int(refused["Retry-After"]) <= 151


def test_manage_py_axes_reset_lifts_every_lock(owner, other_user):
    for name in ("owner", "other"):
        for _ in range(LIMIT):
            sign_in("/login/", name, "wrong", address=ELSEWHERE if name == "other" else ATTACKER)

    call_command("axes_reset_username", "owner")
    assert sign_in("/login/", "owner", "owner-pass-123").status_code == 302
    assert sign_in("/login/", "other", "other-pass-123", address=ELSEWHERE).status_code == 429

    call_command("axes_reset")
    assert sign_in("/login/", "other", "other-pass-123", address=ELSEWHERE).status_code == 302


def test_admins_see_the_lock_and_lift_it_by_deleting_the_attempts(owner, admin_client):
    for _ in range(LIMIT):
        sign_in("/login/", "owner", "wrong")

    listing = admin_client.get("/admin/axes/accessattempt/?locked_out=yes")
    assert listing.status_code == 200
    assert "owner" in listing.content.decode()
    assert ATTACKER in listing.content.decode()

    attempt = AccessAttempt.objects.get()
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert sign_in("/login/", "owner", "owner-pass-123").status_code == 302
    forgotten = Event.objects.get(kind=Event.DELETE, identity="owner")
    assert forgotten.reason == f"sign-in failures from {ATTACKER} forgotten by admin via admin"
    assert forgotten.actor_name == "admin"


def test_the_admins_cleanup_action_removes_only_expired_attempts(owner, other_user, admin_client):
    sign_in("/login/", "owner", "wrong")
    sign_in("/login/", "other", "wrong")
    # Aged after the last sign-in, which would have cleaned it up itself.
    AccessAttempt.objects.filter(username="owner").update(
        attempt_time=F("attempt_time") - timedelta(minutes=16)
    )

    response = admin_client.post(
        "/admin/axes/accessattempt/",
        {
            "action": "cleanup_expired_attempts",
            "_selected_action": list(AccessAttempt.objects.values_list("pk", flat=True)),
        },
    )

    assert response.status_code == 302
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["other"]
    cleaned = Event.objects.get(kind=Event.DELETE)
    assert cleaned.reason == "1 expired sign-in failure record(s) cleaned up by admin via admin"
    assert cleaned.actor_name == "admin"


def test_the_user_page_in_the_admin_shows_the_lock_and_an_action_lifts_it(owner, admin_client):
    page = admin_client.get(f"/admin/auth/user/{owner.pk}/change/").content.decode()
    assert "Not locked." in page
    for _ in range(LIMIT):
        sign_in("/login/", "owner", "wrong")

    page = admin_client.get(f"/admin/auth/user/{owner.pk}/change/").content.decode()
    assert f"Locked from 1 address(es) ({ATTACKER})" in page
    assert "lifts by itself in 15 min" in page

    response = admin_client.post(
        "/admin/auth/user/",
        {"action": "lift_sign_in_lock", "_selected_action": [owner.pk]},
    )
    assert response.status_code == 302
    assert sign_in("/login/", "owner", "owner-pass-123").status_code == 302
    lifted = Event.objects.get(kind=Event.CHANGE, identity="owner")
    assert lifted.reason == "sign-in lock lifted by admin via admin"
    assert lifted.actor_name == "admin"


def test_a_flood_of_refused_sign_ins_writes_one_event_per_lock(owner, admin_client):
    for _ in range(LIMIT + 200):
        sign_in("/admin/login/", "owner", "wrong")
    # Sprayed over other accounts too: the same lock on the address.
    for n in range(50):
        sign_in("/login/", f"user{n}", "wrong")

    events = list(Event.objects.filter(kind=Event.AUTH_FAILED).order_by("id"))
    assert [(event.identity, event.source_ip, event.connector_id) for event in events] == [
        ("owner", ATTACKER, None)
    ]
    assert (
        events[0].reason == f"portal sign-in locked after {LIMIT} failed attempts (/admin/login/)"
    )
    audit = admin_client.get("/admin/audit/event/?kind=auth_failed").content.decode()
    assert "portal sign-in locked after" in audit

    # Once the lock lifts, failing again locks again: a new event.
    age_every_attempt(timedelta(minutes=15, seconds=1))
    for _ in range(LIMIT + 20):
        sign_in("/login/", "owner", "wrong")
    assert Event.objects.filter(kind=Event.AUTH_FAILED).count() == 2


def test_a_refusal_under_a_lock_not_yet_reported_is_recorded_once(owner):
    for _ in range(LIMIT):
        sign_in("/login/", "owner", "wrong")
    # What a cool-off later looks like to the cache (its entry expired), the lock
    # still in force: the next refusal is recorded, the ones after it are not.
    cache.clear()
    for _ in range(20):
        assert sign_in("/login/", "owner", "wrong").status_code == 429

    reasons = list(
        Event.objects.filter(kind=Event.AUTH_FAILED).order_by("id").values_list("reason", flat=True)
    )
    assert reasons == [
        f"portal sign-in locked after {LIMIT} failed attempts (/login/)",
        "portal sign-in refused: locked after too many failed attempts (further refusals "
        "in the next 15 minutes are not recorded) (/login/)",
    ]


@override_settings(
    CACHES={"default": {"BACKEND": "portal.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}}
)
def test_with_the_cache_down_a_refusal_is_still_a_429_and_recorded(owner):
    for _ in range(LIMIT + 2):
        response = sign_in("/login/", "owner", "wrong")
    assert response.status_code == 429
    assert Event.objects.filter(kind=Event.AUTH_FAILED).count() == 3


def test_successful_sign_ins_are_not_failures(owner):
    for _ in range(LIMIT * 2):
        assert sign_in("/login/", "owner", "owner-pass-123").status_code == 302
    assert not AccessAttempt.objects.exists()
    assert AccessLog.objects.filter(username="owner").count() == LIMIT * 2


@pytest.mark.parametrize("path", SIGN_IN_PAGES)
def test_nul_bytes_in_the_form_or_headers_are_refused_cleanly(owner, path):
    nul = {"HTTP_USER_AGENT": "agent\x00x", "HTTP_ACCEPT": "text/html\x00"}
    assert sign_in(path, "own\x00er", "wrong", **nul).status_code == 200
    assert sign_in(path, "owner", "wrong\x00", **nul).status_code == 200
    assert not AccessAttempt.objects.exists()  # refused by the form, no password checked
    assert sign_in(path, "owner", "wrong", **nul).status_code == 200
    if path == "/login/":
        assert sign_in(path, "owner", "owner-pass-123", **nul).status_code == 302
    assert AccessAttempt.objects.get().user_agent == "agentx"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spread", ["one address, many browsers", "many addresses"])
@override_settings(LOGIN_ACCOUNT_FAILURE_LIMIT=LIMIT)
def test_simultaneous_guesses_never_get_more_password_checks_than_the_limit(owner, spread):
    callers = 4 * LIMIT
    barrier = threading.Barrier(callers)

    def guess(n):
        if spread == "many addresses":
            where = {"address": f"203.0.113.{n + 1}"}
        else:
            where = {"HTTP_USER_AGENT": f"browser {n}"}
        try:
            barrier.wait(timeout=30)
            return sign_in("/login/", "owner", f"guess-{n}", **where).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=callers) as pool:
        statuses = list(pool.map(guess, range(callers), timeout=300))

    # Each attempt that was checked and failed stays counted; refused ones are not.
    checked = AccessAttempt.objects.aggregate(total=Sum("failures_since_start"))["total"] or 0
    assert 0 < checked <= LIMIT
    # The others were refused unchecked (an attempt judged while others held counts
    # they later gave back may be told 429 too).
    assert statuses.count(200) <= checked
    assert statuses.count(429) == callers - statuses.count(200)
    assert sign_in("/login/", "owner", "owner-pass-123", address=ELSEWHERE).status_code == (
        429 if checked == LIMIT else 302
    )
