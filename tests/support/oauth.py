"""A companion app's side of OAuth 2.0 against Gatehouse: the authorization-code flow
with PKCE (RFC 7636) through the real endpoints, as a mobile app runs it."""

import base64
import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from django.test import Client

from accounts import oauth
from audit.events import Actor

REDIRECT_URI = "https://app.example/callback"
AUTHORIZE = "/oauth/authorize/"
TOKEN = "/oauth/token/"
ALL_SCOPES = "users:read devices:read messages:write devices:pair"


@dataclass
class App:
    row: object
    secret: str | None

    @property
    def client_id(self) -> str:
        return self.row.client_id


def register(maker, kind=oauth.PUBLIC_APP, name="Acme Home", uris=(REDIRECT_URI,)) -> App:
    row, secret = oauth.register_app(maker, name, kind, list(uris), actor=Actor(maker, "tests"))
    return App(row, secret)


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(app: App, scope: str, challenge: str, state="s-1", **extra) -> dict:
    return {
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def consent(browser: Client, app: App, scope: str, challenge: str, state="s-1"):
    """The user opens the consent page and allows: the redirect with the code."""
    params = authorize_params(app, scope, challenge, state)
    shown = browser.get(AUTHORIZE, params)
    assert shown.status_code == 200, shown.content.decode()
    return browser.post(AUTHORIZE, {**params, "allow": "Authorize"})


def code_of(response, state="s-1") -> str:
    assert response.status_code == 302, response.content.decode()
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def exchange(app: App, code: str, verifier: str, client: Client | None = None):
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": app.client_id,
        "code_verifier": verifier,
    }
    if app.secret:
        body["client_secret"] = app.secret
    return (client or Client()).post(TOKEN, body)


def refresh(app: App, refresh_token: str, client: Client | None = None):
    body = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": app.client_id,
    }
    if app.secret:
        body["client_secret"] = app.secret
    return (client or Client()).post(TOKEN, body)


def tokens_for(browser: Client, app: App, scope: str = ALL_SCOPES) -> dict:
    """The whole flow: consent, then the code and verifier for tokens."""
    verifier, challenge = pkce()
    code = code_of(consent(browser, app, scope, challenge))
    answer = exchange(app, code, verifier)
    assert answer.status_code == 200, answer.content.decode()
    return answer.json()
