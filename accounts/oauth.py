"""Companion apps on django-oauth-toolkit: the apps device makers register, the grants
users give them, and the access tokens the /v1.1/ user API accepts.

The toolkit runs the OAuth 2.0 endpoints (authorize, token, revoke); this module is
what Gatehouse adds around them: token formats, registration and deletion of apps
by their maker, a user's list of granted apps and its revocation, and the lookup of
an access token by its SHA-256 (the toolkit stores nothing else, settings.OAUTH2_PROVIDER).
Every change is logged with its actor.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from audit.events import Actor, record_event
from audit.models import Event
from core.errors import Refusal

# An app's tokens say what they are, so the /v1.1/ views tell them from a device's
# access token (32 hex digits) without a lookup.
ACCESS_TOKEN_PREFIX = "gha_"
REFRESH_TOKEN_PREFIX = "ghr_"

# What a maker registers: a kind of app and the grant it uses.
PUBLIC_APP = "public"
SERVER_APP = "server"
SCRIPT = "script"
APP_KINDS = {
    PUBLIC_APP: (
        "Mobile or browser app: authorization code with PKCE, no client secret",
        Application.CLIENT_PUBLIC,
        Application.GRANT_AUTHORIZATION_CODE,
    ),
    SERVER_APP: (
        "Web app with a back end: authorization code with PKCE and a client secret",
        Application.CLIENT_CONFIDENTIAL,
        Application.GRANT_AUTHORIZATION_CODE,
    ),
    SCRIPT: (
        "Your own scripts: client credentials, acting for your own account",
        Application.CLIENT_CONFIDENTIAL,
        Application.GRANT_CLIENT_CREDENTIALS,
    ),
}


def new_access_token(request, refresh_token=False) -> str:
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token(request) -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_app_token(token: str) -> bool:
    return token.startswith(ACCESS_TOKEN_PREFIX)


def token_checksum(token: str) -> str:
    """What the toolkit stores of a token (its `token_checksum`)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class AppError(Refusal):
    """A refused change to an app or a grant."""


# --- apps, registered by device makers -----------------------------------------------


def makers_apps(user):
    return Application.objects.filter(user=user).order_by("name", "id")


def _describe(app: Application) -> str:
    return f"app “{app.name}” ({app.client_id})"


def register_app(
    user, name: str, kind: str, redirect_uris: list[str], *, actor: Actor, ip=None
) -> tuple[Application, str | None]:
    """A new app of `user` (a device maker): the row and its client secret, shown once
    and stored only hashed; None for a public app, which has none."""
    if kind not in APP_KINDS:
        raise AppError("choose what kind of app this is")
    if any("*" in uri for uri in redirect_uris):
        # Matched exactly: a "*" would be taken for a wildcard it is not.
        raise AppError("redirect URIs are matched exactly; they cannot hold a *")
    _, client_type, grant_type = APP_KINDS[kind]
    secret = generate_client_secret() if client_type == Application.CLIENT_CONFIDENTIAL else ""
    app = Application(
        user=user,
        name=name,
        client_type=client_type,
        authorization_grant_type=grant_type,
        redirect_uris=" ".join(redirect_uris),
        client_secret=secret,
        hash_client_secret=True,
        skip_authorization=False,
    )
    app.full_clean()
    with transaction.atomic():
        app.save()
        record_event(
            None, "", Event.CREATE, f"{_describe(app)} registered by {actor}", ip, actor=actor
        )
    return app, secret or None


def delete_app(user, app_id, *, actor: Actor, ip=None) -> None:
    """The maker deletes their app: every token and code it holds goes with it."""
    with transaction.atomic():
        app = Application.objects.select_for_update().filter(pk=app_id, user=user).first()
        if app is None:
            raise AppError("no such app")
        record_event(
            None, "", Event.DELETE, f"{_describe(app)} deleted by {actor}", ip, actor=actor
        )
        app.delete()


# --- grants, seen and revoked by users -----------------------------------------------


@dataclass(frozen=True)
class GrantedApp:
    app: Application
    scopes: list[str]
    last_granted: datetime


def granted_apps(user) -> list[GrantedApp]:
    """The apps holding a live access or refresh token of `user`, with the scopes granted."""
    now = timezone.now()
    live = AccessToken.objects.filter(user=user, expires__gt=now)
    refreshable = RefreshToken.objects.filter(user=user, revoked__isnull=True)
    app_ids = set(live.values_list("application_id", flat=True)) | set(
        refreshable.values_list("application_id", flat=True)
    )
    apps = []
    for app in Application.objects.filter(pk__in=app_ids).select_related("user"):
        scopes = set()
        for scope in live.filter(application=app).values_list("scope", flat=True):
            scopes.update(scope.split())
        for token in refreshable.filter(application=app).select_related("access_token"):
            if token.access_token is not None:
                scopes.update(token.access_token.scope.split())
        last = RefreshToken.objects.filter(user=user, application=app).aggregate(Max("created"))
        apps.append(GrantedApp(app, sorted(scopes), last["created__max"] or now))
    return sorted(apps, key=lambda granted: granted.app.name.lower())


def revoke_app(user, app_id, *, actor: Actor, ip=None) -> Application:
    """`user` withdraws everything they granted the app: its access tokens stop
    working at once, its refresh tokens are revoked and its unused codes deleted."""
    app = Application.objects.filter(pk=app_id).first()
    if app is None:
        raise AppError("no such app")
    with transaction.atomic():
        now = timezone.now()
        RefreshToken.objects.filter(user=user, application=app, revoked__isnull=True).update(
            revoked=now, updated=now, access_token=None
        )
        removed, _ = AccessToken.objects.filter(user=user, application=app).delete()
        Grant.objects.filter(user=user, application=app).delete()
        record_event(
            None,
            "",
            Event.DELETE,
            f"{_describe(app)} no longer acts for {user.get_username()}: revoked by {actor}",
            ip,
            actor=actor,
        )
    return app


# --- the access tokens the /v1.1/ user API accepts ------------------------------------


@dataclass(frozen=True)
class AppAccess:
    """Who an app acts for with a token, and what it may do."""

    user: object
    app: Application
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def app_access(token: str) -> AppAccess | None:
    """The grant behind a live access token, or None (unknown, expired or revoked).

    A client-credentials token acts for the maker who registered the app, on their
    own account.
    """
    if not is_app_token(token):
        return None
    row = (
        AccessToken.objects.select_related("user", "application__user")
        .filter(token_checksum=token_checksum(token))
        .first()
    )
    if row is None or row.is_expired():
        return None
    user = row.user if row.user_id is not None else row.application.user
    if user is None or not user.is_active:
        return None
    return AppAccess(user, row.application, frozenset(row.scope.split()))
