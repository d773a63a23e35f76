"""Sign-in lockout for the portal and the admin, on django-axes.

Failed sign-ins are counted per username and per client address (portal.net
.client_ip: proxy headers are believed only from our proxy), in the database
that every web process shares. Past AXES_FAILURE_LIMIT failures within
AXES_COOLOFF_TIME, either one is refused without checking the password until
its failures age out. Refusals do not extend a lock, so it lifts on time however
often a stranger keeps trying; to lock the account again they must fail again.

axes counts a failure after the password check, so a burst of simultaneous
guesses would all be checked before the first is counted. Here each attempt is
counted first and the limit judged on the count that includes it; a correct
password then takes its count back. Of any set of simultaneous guesses, the
last to count sees all the others, so no more than the limit are ever checked.
"""

import logging
from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit, get_query_str
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db import router, transaction
from django.db.models import F, Sum
from django.dispatch import receiver
from django.shortcuts import render
from django.utils import timezone

from devices.models import Event
from devices.services.events import Actor, record_event

log = logging.getLogger("gatehouse.signin")

# What axes counts by, and how a person reads it.
LOCKED_BY = {"username": "this account", "ip_address": "your address"}


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
        if self.get_failures(request, credentials) > get_failure_limit(request, credentials):
            # Simultaneous attempts took the last ones: refused unchecked, so not a failure.
            self._take_back(request)
            return False
        return True

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        if request is None or getattr(request, "gatehouse_attempt", None) is None:
            if request is not None:
                _scrub(request)
            return super().user_login_failed(sender, credentials, request, **kwargs)
        # Counted in is_allowed already: only judge whether this failure locks.
        request.gatehouse_attempt = None
        failures = self.get_failures(request, credentials)
        request.axes_failures_since_start = failures
        if failures >= get_failure_limit(request, credentials):
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


def lock_end(parameter: str, value, now: datetime | None = None) -> datetime | None:
    """When the failures counted for `parameter` ("username" or "ip_address") = `value`
    drop below the limit, or None if they are below it already."""
    now = now or timezone.now()
    cool_off = get_cool_off()
    rows = (
        AccessAttempt.objects.filter(**{parameter: value}, attempt_time__gte=now - cool_off)
        .values("attempt_time")
        .annotate(failures=Sum("failures_since_start"))
        .order_by("-attempt_time")
    )
    counted = 0
    # Failures age out oldest first: the lock lasts until the oldest of the newest
    # `limit` failures is older than the cool-off.
    for row in rows:
        counted += row["failures"]
        if counted >= settings.AXES_FAILURE_LIMIT:
            return row["attempt_time"] + cool_off
    return None


def lock_ends(request, credentials=None) -> dict[str, datetime]:
    """For each lockout parameter of this request over the limit, when that lock lifts."""
    values = {
        "username": get_client_username(request, credentials),
        "ip_address": request.axes_ip_address,
    }
    ends = {
        parameter: lock_end(parameter, value, request.axes_attempt_time)
        for parameter, value in values.items()
    }
    return {parameter: end for parameter, end in ends.items() if end is not None}


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


@receiver(user_locked_out)
def record_refusal(sender, request, username, ip_address, **kwargs):
    """A line in the log for each locked-out sign-in: the attempt that locked, and each
    refused one after it. An admin looks for `auth_failed` events naming the username."""
    failures = getattr(request, "axes_failures_since_start", None)
    if failures is not None:
        reason = f"portal sign-in locked after {failures} failed attempts"
    else:
        reason = "portal sign-in refused: locked after too many failed attempts"
    path = getattr(request, "axes_path_info", "")
    # Not the username: people type their password there by mistake. The event,
    # which only admins read, names it (as axes' own attempt records do).
    log.warning("%s (from %s, %s)", reason, ip_address, path)
    record_event(None, username or "", Event.AUTH_FAILED, f"{reason} ({path})", ip_address)
