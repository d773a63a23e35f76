"""The OAuth 2.0 authorization server companion apps use: authorization code with PKCE,
refresh-token rotation, client credentials, app registration by makers and revocation
by users, through the real endpoints and the real toolkit (docs/apps-and-hubs.md)."""

import hashlib
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher
from django.test import Client
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

from accounts import oauth, oauth_views
from audit.models import Event
from tests.support import oauth as flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(owner):
    return flow.register(owner)


def test_the_code_flow_with_pkce_gives_tokens_stored_only_as_their_hash(app, end_user_browser):
    tokens = flow.tokens_for(end_user_browser, app)
    assert tokens["token_type"] == "Bearer"
    assert tokens["access_token"].startswith("gha_")
    assert tokens["refresh_token"].startswith("ghr_")
    assert set(tokens["scope"].split()) == set(flow.ALL_SCOPES.split())
    access = AccessToken.objects.get()
    assert access.token == ""
    assert access.token_checksum == hashlib.sha256(tokens["access_token"].encode()).hexdigest()
    refresh = RefreshToken.objects.get()
    assert refresh.token == ""
    granted = oauth.app_access(tokens["access_token"])
    assert granted.user.username == "enduser" and granted.allows("devices:pair")


def test_a_confidential_apps_secret_is_stored_hashed(owner):
    server = flow.register(owner, kind=oauth.SERVER_APP)
    row = Application.objects.get(pk=server.row.pk)
    assert server.secret and server.secret not in row.client_secret
    # Hashed with the project's password hasher (a fast one in tests, PBKDF2 in production).
    assert identify_hasher(row.client_secret)
    assert check_password(server.secret, row.client_secret)


def test_a_public_app_must_send_an_s256_challenge(app, end_user_browser):
    params = flow.authorize_params(app, "devices:read", "x" * 43)
    without = {k: v for k, v in params.items() if not k.startswith("code_challenge")}
    answer = end_user_browser.get(flow.AUTHORIZE, without)
    assert answer.status_code == 302
    assert parse_qs(urlsplit(answer["Location"]).query)["error"] == ["invalid_request"]
    verifier, _ = flow.pkce()
    plain = {**params, "code_challenge": verifier, "code_challenge_method": "plain"}
    answer = end_user_browser.post(flow.AUTHORIZE, {**plain, "allow": "Authorize"})
    assert "code=" not in answer.get("Location", "")
    assert not Grant.objects.exists()


def test_a_wrong_verifier_gets_no_token(app, end_user_browser):
    _, challenge = flow.pkce()
    code = flow.code_of(flow.consent(end_user_browser, app, "devices:read", challenge))
    other_verifier, _ = flow.pkce()
    answer = flow.exchange(app, code, other_verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    assert not AccessToken.objects.exists()


def test_a_code_is_good_once(app, end_user_browser):
    verifier, challenge = flow.pkce()
    code = flow.code_of(flow.consent(end_user_browser, app, "devices:read", challenge))
    assert flow.exchange(app, code, verifier).status_code == 200
    again = flow.exchange(app, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "https://app.example/callback/more",
        "https://app.example/callback?next=https://evil.example",
        "https://app.example.evil.example/callback",
        "http://app.example/callback",
    ],
)
def test_only_a_registered_redirect_uri_exactly_is_followed(app, end_user_browser, redirect_uri):
    _, challenge = flow.pkce()
    params = {**flow.authorize_params(app, "devices:read", challenge), "redirect_uri": redirect_uri}
    shown = end_user_browser.get(flow.AUTHORIZE, params)
    assert shown.status_code == 400
    assert "Location" not in shown
    assert b"cannot sign you in" in shown.content
    posted = end_user_browser.post(flow.AUTHORIZE, {**params, "allow": "Authorize"})
    assert "evil" not in posted.get("Location", "") and "code=" not in posted.get("Location", "")
    assert not Grant.objects.exists()


def test_an_unknown_client_is_shown_an_error_not_redirected(end_user_browser):
    answer = end_user_browser.get(
        flow.AUTHORIZE,
        {"client_id": "nope", "redirect_uri": flow.REDIRECT_URI, "response_type": "code"},
    )
    assert answer.status_code == 400 and "Location" not in answer


def test_the_consent_page_needs_a_sign_in_and_names_app_maker_and_scopes(app, end_user_browser):
    _, challenge = flow.pkce()
    params = flow.authorize_params(app, "devices:read messages:write", challenge)
    anonymous = Client().get(flow.AUTHORIZE, params)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
    page = end_user_browser.get(flow.AUTHORIZE, params).content.decode()
    assert "Allow Acme Home to use your account?" in page
    assert "owner" in page
    assert "Send messages for your devices" in page
    assert "Pair new devices" not in page


def test_consent_without_the_csrf_token_is_refused(app, end_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(end_user)
    _, challenge = flow.pkce()
    params = flow.authorize_params(app, "devices:read", challenge)
    assert browser.get(flow.AUTHORIZE, params).status_code == 200
    forged = browser.post(flow.AUTHORIZE, {**params, "allow": "Authorize"})
    assert forged.status_code == 403
    assert not Grant.objects.exists()


def test_denying_sends_the_app_back_with_access_denied(app, end_user_browser):
    _, challenge = flow.pkce()
    params = flow.authorize_params(app, "devices:read", challenge)
    answer = end_user_browser.post(flow.AUTHORIZE, params)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer["Location"]).query)
    assert query["error"] == ["access_denied"] and "code" not in query
    assert not Grant.objects.exists()


def test_an_unknown_scope_is_refused(app, end_user_browser):
    _, challenge = flow.pkce()
    answer = end_user_browser.get(
        flow.AUTHORIZE, flow.authorize_params(app, "devices:read admin", challenge)
    )
    assert parse_qs(urlsplit(answer["Location"]).query)["error"] == ["invalid_scope"]


def test_refresh_rotates_and_a_refresh_token_used_twice_ends_the_family(app, end_user_browser):
    first = flow.tokens_for(end_user_browser, app)
    rotated = flow.refresh(app, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert oauth.app_access(first["access_token"]) is None
    assert oauth.app_access(second["access_token"]) is not None

    replayed = flow.refresh(app, first["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    # The replay tells the server a refresh token leaked: the whole family ends.
    assert oauth.app_access(second["access_token"]) is None
    assert flow.refresh(app, second["refresh_token"]).status_code == 400


def test_client_credentials_act_for_the_maker_with_the_secret_only(owner):
    script = flow.register(owner, kind=oauth.SCRIPT, uris=())
    answer = Client().post(
        flow.TOKEN,
        {
            "grant_type": "client_credentials",
            "client_id": script.client_id,
            "client_secret": script.secret,
            "scope": "devices:read",
        },
    )
    assert answer.status_code == 200, answer.content.decode()
    token = answer.json()
    assert "refresh_token" not in token
    access = oauth.app_access(token["access_token"])
    assert access.user == owner and access.scopes == {"devices:read"}
    wrong = Client().post(
        flow.TOKEN,
        {
            "grant_type": "client_credentials",
            "client_id": script.client_id,
            # Its last character changed (to one it is not already).
            "client_secret": script.secret[:-1] + ("x" if script.secret[-1] != "x" else "y"),
        },
    )
    assert wrong.status_code == 401


def test_a_public_app_cannot_use_client_credentials(app):
    answer = Client().post(
        flow.TOKEN, {"grant_type": "client_credentials", "client_id": app.client_id}
    )
    assert answer.status_code in (400, 401)
    assert not AccessToken.objects.exists()


def test_the_token_endpoint_is_rate_limited_per_address(app, settings):
    settings.RATE_LIMIT_OAUTH_TOKEN = "3/600"
    body = {"grant_type": "authorization_code", "code": "guess", "client_id": app.client_id}
    for _ in range(3):
        assert Client().post(flow.TOKEN, body).status_code == 400
    limited = Client().post(flow.TOKEN, body)
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"] == "invalid_request"


def test_tokens_and_secrets_are_never_logged(owner, end_user_browser, caplog):
    caplog.set_level(logging.DEBUG)
    server = flow.register(owner, kind=oauth.SERVER_APP)
    tokens = flow.tokens_for(end_user_browser, server)
    rotated = flow.refresh(server, tokens["refresh_token"]).json()
    flow.refresh(server, tokens["refresh_token"])
    logged = caplog.text + "".join(Event.objects.values_list("reason", flat=True))
    for secret in (
        server.secret,
        tokens["access_token"],
        tokens["refresh_token"],
        rotated["refresh_token"],
    ):
        assert secret not in logged


# --- the maker's apps and the user's granted apps ---------------------------------------


def test_plain_users_cannot_register_apps(end_user_browser):
    assert end_user_browser.get("/apps/").status_code == 403
    assert end_user_browser.post("/apps/new/", {"name": "x", "kind": "script"}).status_code == 403
    assert not Application.objects.exists()


def test_a_maker_registers_an_app_and_sees_its_secret_once(owner_client):
    answer = owner_client.post(
        "/apps/new/",
        {"name": "Acme  Backend", "kind": oauth.SERVER_APP, "redirect_uris": flow.REDIRECT_URI},
    )
    assert answer.status_code == 200
    row = Application.objects.get()
    secret = answer.context["secret"]
    assert secret and secret.encode() in answer.content
    assert "no-store" in answer["Cache-Control"] or "max-age=0" in answer["Cache-Control"]
    assert row.name == "Acme Backend" and row.redirect_uris == flow.REDIRECT_URI
    listing = owner_client.get("/apps/")
    assert row.client_id.encode() in listing.content and secret.encode() not in listing.content
    assert Event.objects.filter(kind=Event.CREATE, reason__contains=row.client_id).exists()


@pytest.mark.parametrize(
    "uris",
    [
        "",
        "http://app.example/callback",
        "javascript:alert(1)",
        "nope",
        "https://*.app.example/callback",
        "https://app.example/*",
        "https://app.example/callback#fragment",
        "https://app.example/call\x00back",
    ],
)
def test_an_app_with_a_bad_redirect_uri_is_not_registered(owner_client, uris):
    answer = owner_client.post(
        "/apps/new/", {"name": "Acme", "kind": oauth.PUBLIC_APP, "redirect_uris": uris}
    )
    assert answer.status_code == 200 and answer.context["form"].errors
    assert not Application.objects.exists()


def test_a_maker_deletes_only_their_own_apps_and_the_tokens_go_with_them(
    app, owner_client, other_browser, end_user_browser
):
    tokens = flow.tokens_for(end_user_browser, app)
    other_browser.post(f"/apps/{app.row.pk}/delete/")
    assert Application.objects.filter(pk=app.row.pk).exists()
    assert owner_client.post(f"/apps/{app.row.pk}/delete/").status_code == 302
    assert not Application.objects.exists()
    assert oauth.app_access(tokens["access_token"]) is None
    assert flow.refresh(app, tokens["refresh_token"]).status_code == 401


def test_a_user_sees_the_apps_they_allowed_and_revokes_one(app, owner, end_user_browser):
    other = flow.register(owner, name="Acme Garden")
    tokens = flow.tokens_for(end_user_browser, app, "devices:read")
    kept = flow.tokens_for(end_user_browser, other, "devices:read")
    page = end_user_browser.get("/my/apps/").content.decode()
    assert "Acme Home" in page and "Acme Garden" in page and "devices:read" in page

    assert end_user_browser.post(f"/my/apps/{app.row.pk}/revoke/").status_code == 302
    assert oauth.app_access(tokens["access_token"]) is None
    assert flow.refresh(app, tokens["refresh_token"]).status_code == 400
    assert oauth.app_access(kept["access_token"]) is not None
    page = end_user_browser.get("/my/apps/").content.decode()
    assert 'aria-label="Revoke Acme Home"' not in page
    assert 'aria-label="Revoke Acme Garden"' in page
    assert Event.objects.filter(kind=Event.DELETE, reason__contains="no longer acts for").exists()


def test_revoking_touches_only_the_signed_in_users_grant(app, end_user, owner, end_user_browser):
    mine = flow.tokens_for(end_user_browser, app)
    owner_browser = Client()
    owner_browser.force_login(owner)
    owner_browser.post(f"/my/apps/{app.row.pk}/revoke/")
    assert oauth.app_access(mine["access_token"]) is not None
    assert end_user_browser.get("/my/apps/99999/revoke/").status_code == 405
    assert end_user_browser.post("/my/apps/99999/revoke/").status_code == 302


def test_the_consent_page_lets_its_form_lead_to_the_apps_redirect_uri_only(app, end_user_browser):
    """Browsers hold the redirect after the consent form to the page's form-action."""
    _, challenge = flow.pkce()
    params = flow.authorize_params(app, "users:read", challenge)
    shown = end_user_browser.get(flow.AUTHORIZE, params)
    policy = dict(
        directive.split(" ", 1) for directive in shown["Content-Security-Policy"].split("; ")
    )
    assert policy["form-action"] == "'self' https://app.example"
    assert policy["default-src"] == "'self'"
    refused = end_user_browser.get(
        flow.AUTHORIZE, {**params, "redirect_uri": "https://evil.example/callback"}
    )
    assert refused.status_code == 400
    assert "form-action 'self';" in refused["Content-Security-Policy"]
    assert "evil" not in refused["Content-Security-Policy"]
    assert oauth_views.redirect_origin("https://app.example:8443/cb") == "https://app.example:8443"
    assert oauth_views.redirect_origin("https://a.example;script-src *") is None
