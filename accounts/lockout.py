"""Sign-in lockout for the portal and the admin, on django-axes.

Failed sign-ins are counted by username and client address (core.net
.client_ip: proxy headers are believed only from our proxy; an IPv6 client by
its /64, which one subscriber usually holds whole), in the database that every
web process shares. Three locks, each judged on the failures of the last
AXES_COOLOFF_TIME, refuse a sign-in without checking the password:
- an account from one address, past AXES_FAILURE_LIMIT: a stranger guessing
  locks only their own address out of the account, never its owner;
- one address over any accounts, past AXES_FAILURE_LIMIT: one password sprayed;
- an account from every address, past the much higher LOGIN_ACCOUNT_FAILURE_LIMIT:
  guesses spread over many addresses stay bounded.
axes judges the first two (AXES_LOCKOUT_PARAMETERS, one limit); the third is
judged here. Refusals do not extend a lock, so it lifts on time however often a
stranger keeps trying; to lock again they must fail again.

axes counts a failure after the password check, so a burst of simultaneous
guesses would all be checked before the first is counted. Here each attempt is
counted first and the limit judged on the count that includes it; a correct
password then takes its count back. Of any set of simultaneous guesses, the
last to count sees all the others, so no more than the limit are ever checked.
"""

import hashlib
import ipaddress
import logging
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_query_str
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.core.cache import cache
from django.db import router, transaction
from django.db.models import F, Sum
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone

from audit.events import Actor, record_event
from audit.models import Event
from core.net import client_ip

log = logging.getLogger("gatehouse.signin")

# The locks, and how a person reads them.
LOCKED_BY = {
    "pair": "this account from your address",
    "ip_address": "your address",
    "username": "this account",
}
IPV6_NETWORK_BITS = 64


def counted_address(request) -> str | None:
    """The client address failures are counted by (AXES_CLIENT_IP_CALLABLE).

    An IPv6 client is counted by its /64 (as its first address, which fits axes'
    address column): a subscriber is given at least a /64 and may use every address
    in it, so counting each apart would let one host spray without limit. An
    IPv4-mapped IPv6 address is the IPv4 address it carries.
    """
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        host_bits = 128 - IPV6_NETWORK_BITS
        return str(ipaddress.IPv6Address(int(ip) >> host_bits << host_bits))
    return str(ip)


def _lock_filters(username, address) -> dict[str, dict]:
    return {
        "pair": {"username": username, "ip_address": address},
        "ip_address": {"ip_address": address},
        "username": {"username": username},
    }


def _limit(lock: str) -> int:
    if lock == "username":
        return settings.LOGIN_ACCOUNT_FAILURE_LIMIT
    return settings.AXES_FAILURE_LIMIT


def failures(request, credentials=None) -> dict[str, int]:
    """The failures counted against each lock this attempt is under."""
    since = request.axes_attempt_time - get_cool_off()
    username = get_client_username(request, credentials)
    counts = {}
    for lock, match in _lock_filters(username, request.axes_ip_address).items():
        rows = AccessAttempt.objects.filter(**match, attempt_time__gte=since)
        counts[lock] = rows.aggregate(total=Sum("failures_since_start"))["total"] or 0
    return counts


def _scrub(request) -> None:
    """Headers axes stores as they came: PostgreSQL refuses text holding NUL."""
    for name in ("axes_user_agent", "axes_http_accept", "axes_path_info"):
        value = getattr(request, name, None)
        if isinstance(value, str) and "\x00" in value:
            setattr(request, name, value.replace("\x00", ""))


class SignInAttempts(AxesDatabaseHandler):
    """axes' database handler, counting each attempt before its password is checked.

    A correct password takes its count back only when the user is signed in: one the
    page then turns away (an account that is not staff, on the admin) stays counted.
    """

    def is_allowed(self, request, credentials=None) -> bool:
        _scrub(request)
        if not super().is_allowed(request, credentials):
            return False
        if self.is_whitelisted(request, credentials):
            return True
        request.gatehouse_attempt = self._count(request, credentials)
        counts = failures(request, credentials)
        if any(count > _limit(lock) for lock, count in counts.items()):
            # Simultaneous attempts took the last ones: refused unchecked, so not a failure.
            self._take_back(request)
            return False
        return True

    def is_locked(self, request, credentials=None) -> bool:
        counts = failures(request, credentials)
        return any(count >= _limit(lock) for lock, count in counts.items())

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None or getattr(request, "gatehouse_attempt", None) is None:
            if request is not None:
                _scrub(request)
            return super().user_login_failed(sender, credentials, request, **kwargs)
        # Counted in is_allowed already: only judge whether this failure locks.
        request.gatehouse_attempt = None
        counts = failures(request, credentials)
        reached = {lock: count for lock, count in counts.items() if count >= _limit(lock)}
        if reached:
            request.axes_failures_since_start = max(reached.values())
            request.axes_locked_out = True
            request.axes_credentials = credentials
            user_locked_out.send(
                "axes",
                request=request,
                username=get_client_username(request, credentials),
                ip_address=request.axes_ip_address,
            )

    def user_logged_in(self, sender, request, user, **kwargs):
        _scrub(request)
        self._take_back(request)
        return super().user_logged_in(sender, request, user, **kwargs)

    def user_logged_out(self, sender, request, user, **kwargs):
        _scrub(request)
        return super().user_logged_out(sender, request, user, **kwargs)

    def _count(self, request, credentials) -> int:
        """Count one failure for this username, address and browser; the row's id."""
        self.clean_expired_user_attempts(request, credentials)
        with transaction.atomic(using=router.db_for_write(AccessAttempt)):
            attempt, created = AccessAttempt.objects.select_for_update().get_or_create(
                username=get_client_username(request, credentials),
                ip_address=request.axes_ip_address,
                user_agent=request.axes_user_agent,
                defaults={
                    "get_data": get_query_str(request.GET).replace("\x00", ""),
                    "post_data": get_query_str(request.POST).replace("\x00", ""),
                    "http_accept": request.axes_http_accept,
                    "path_info": request.axes_path_info,
                    "failures_since_start": 1,
                    "attempt_time": request.axes_attempt_time,
                },
            )
            if not created:
                AccessAttempt.objects.filter(pk=attempt.pk).update(
                    failures_since_start=F("failures_since_start") + 1,
                    attempt_time=request.axes_attempt_time,
                    http_accept=request.axes_http_accept,
                    path_info=request.axes_path_info,
                )
        return attempt.pk

    @staticmethod
    def _take_back(request) -> None:
        """Remove the failure counted for an attempt that turned out not to be one."""
        pk = getattr(request, "gatehouse_attempt", None)
        if pk is None:
            return
        request.gatehouse_attempt = None
        attempts = AccessAttempt.objects.filter(pk=pk)
        if not attempts.filter(failures_since_start__gt=1).update(
            failures_since_start=F("failures_since_start") - 1
        ):
            attempts.filter(failures_since_start__lte=1).delete()


def lock_end(match: dict, limit: int, now: datetime | None = None) -> datetime | None:
    """When the failures counted for the attempts matching `match` (a filter on
    username and/or ip_address) drop below `limit`, or None if they are below it."""
    now = now or timezone.now()
    cool_off = get_cool_off()
    rows = (
        AccessAttempt.objects.filter(**match, attempt_time__gte=now - cool_off)
        .values("attempt_time")
        .annotate(failures=Sum("failures_since_start"))
        .order_by("-attempt_time")
    )
    counted = 0
    # Failures age out oldest first: the lock lasts until the oldest of the newest
    # `limit` failures is older than the cool-off.
    for row in rows:
        counted += row["failures"]
        if counted >= limit:
            return row["attempt_time"] + cool_off
    return None


def account_lock_end(username: str) -> datetime | None:
    """When the lock on `username` from every address lifts (None: not locked)."""
    return lock_end({"username": username}, _limit("username"))


def locked_addresses(username: str) -> dict[str, datetime]:
    """The addresses locked out of `username`, with when each lock lifts."""
    since = timezone.now() - get_cool_off()
    addresses = (
        AccessAttempt.objects.filter(username=username, attempt_time__gte=since)
        .values_list("ip_address", flat=True)
        .distinct()
    )
    ends = {
        address: lock_end({"username": username, "ip_address": address}, _limit("pair"))
        for address in addresses
    }
    return {address: end for address, end in ends.items() if end is not None}


def lock_ends(request, credentials=None) -> dict[str, datetime]:
    """For each lock this request is under, when it lifts."""
    username = get_client_username(request, credentials)
    ends = {
        lock: lock_end(match, _limit(lock), request.axes_attempt_time)
        for lock, match in _lock_filters(username, request.axes_ip_address).items()
    }
    return {lock: end for lock, end in ends.items() if end is not None}


def lift_lock(username: str, *, actor: Actor, ip=None) -> None:
    """Forget the failed sign-ins counted for `username` (from any address)."""
    AxesProxyHandler.reset_attempts(username=username)
    record_event(None, username, Event.CHANGE, f"sign-in lock lifted by {actor}", ip, actor=actor)


def forget_attempts(attempts, *, actor: Actor, ip=None) -> None:
    """Delete counted failures (axes' rows), which lifts the locks they made."""
    for attempt in attempts:
        with transaction.atomic():
            record_event(
                None,
                attempt.username or "",
                Event.DELETE,
                f"sign-in failures from {attempt.ip_address} forgotten by {actor}",
                ip,
                actor=actor,
            )
            attempt.delete()


def forget_expired_attempts(request, *, actor: Actor, ip=None) -> int:
    """Delete the failures that no longer count (axes' cleanup), with a line naming who."""
    # axes reads the time off a sign-in request; give this one the same.
    AxesProxyHandler.update_request(request)
    with transaction.atomic():
        count = AxesDatabaseHandler().clean_expired_user_attempts(request=request)
        if count:
            record_event(
                None,
                "",
                Event.DELETE,
                f"{count} expired sign-in failure record(s) cleaned up by {actor}",
                ip,
                actor=actor,
            )
    return count


def _minutes(delta: timedelta) -> int:
    return max(1, -(-int(delta.total_seconds()) // 60))


def locked_out(request, original_response=None, credentials=None):
    """The page a refused sign-in gets: what is locked, and for how long (429, Retry-After)."""
    ends = lock_ends(request, credentials)
    if "ip_address" in ends:
        # The address is locked out of every account, this one included.
        ends.pop("pair", None)
    now = timezone.now()
    # Refused while simultaneous attempts took the last ones: those settle in moments.
    wait = max(ends.values(), default=now + timedelta(minutes=1)) - now
    response = render(
        request,
        "registration/locked_out.html",
        {
            "locked": [LOCKED_BY[parameter] for parameter in LOCKED_BY if parameter in ends],
            "minutes": _minutes(wait),
        },
        status=429,
    )
    response["Retry-After"] = str(max(1, int(wait.total_seconds()) + 1))
    return response


def _lock_key(lock: str, match: dict) -> str:
    # Hashed: a username may hold anything, and a cache key may not.
    named = repr([lock, sorted(match.items())])
    return "signin-lock:" + hashlib.sha256(named.encode("utf-8", "replace")).hexdigest()


def _first_report(keys: list[str], *, lock_started: bool) -> bool:
    """Whether this refusal is the first of its locks' cool-off to be recorded.

    A lock that starts is always recorded and marks its keys; after it, one refusal
    per lock and cool-off is. The shared cache decides, so all web processes agree;
    if it cannot answer, the refusal is recorded (a few extra lines, never a 500).
    """
    timeout = int(get_cool_off().total_seconds())
    try:
        if lock_started:
            cache.set_many(dict.fromkeys(keys, 1), timeout=timeout)
            return True
        return any([cache.add(key, 1, timeout=timeout) for key in keys])
    except Exception:  # noqa: BLE001 - any cache failure: record rather than refuse to
        log.exception("sign-in lock: the cache did not answer; recording the refusal")
        return True


@receiver(user_locked_out)
def record_refusal(sender, request, username, ip_address, **kwargs):
    """A line in the event log when a lock starts, and then one per lock and cool-off
    for the refusals it makes, not one each (a stranger may send thousands). Each
    refusal is still logged, below warning once recorded. An admin looks for
    `auth_failed` events naming the username."""
    failures = getattr(request, "axes_failures_since_start", None)
    lock_started = failures is not None
    minutes = _minutes(get_cool_off())
    if lock_started:
        reason = f"portal sign-in locked after {failures} failed attempts"
    else:
        reason = (
            "portal sign-in refused: locked after too many failed attempts "
            f"(further refusals in the next {minutes} minutes are not recorded)"
        )
    matches = _lock_filters(username, ip_address)
    now = getattr(request, "axes_attempt_time", None)
    locks = [lock for lock, match in matches.items() if lock_end(match, _limit(lock), now)]
    # Refused while simultaneous attempts held the last counts: the pair's lock.
    keys = [_lock_key(lock, matches[lock]) for lock in locks or ["pair"]]
    path = getattr(request, "axes_path_info", "")
    # The address as seen, not the IPv6 /64 it is counted by.
    address = client_ip(request)
    # Not the username: people type their password there by mistake. The event,
    # which only admins read, names it (as axes' own attempt records do).
    if not _first_report(keys, lock_started=lock_started):
        log.info("portal sign-in refused while locked (from %s, %s)", address, path)
        return
    log.warning("%s (from %s, %s)", reason, address, path)
    record_event(None, username or "", Event.AUTH_FAILED, f"{reason} ({path})", address)
