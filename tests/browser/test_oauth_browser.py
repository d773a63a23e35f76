"""A companion app's OAuth 2.0 flow in a real browser: the user signs in, allows the app
on the consent page, the app trades the code (with its PKCE verifier) for a token that
calls /v1.1/, and the user revokes the app under "Apps you allowed"."""

import json
import re
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import expect

from registrations.services.registration import public_user_id
from tests.support import oauth as flow

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def post_form(url: str, fields: dict) -> dict:
    """What the app's back end sends the token endpoint."""
    request = Request(url, data=urlencode(fields).encode(), method="POST")
    with urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def get_json(url: str, token: str) -> tuple[int, dict]:
    request = Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_user_allows_an_app_which_calls_the_api_until_revoked(page, live_server, owner, end_user):
    app = flow.register(owner)
    verifier, challenge = flow.pkce()
    params = flow.authorize_params(app, "users:read devices:read", challenge, state="st-42")
    page.goto(f"{flow.AUTHORIZE}?{urlencode(params)}")
    expect(page).to_have_url(re.compile(r"/login/\?next="))
    page.fill("#id_username", "enduser")
    page.fill("#id_password", "end-pass-123")
    page.click("button[type=submit]")

    expect(page.locator("#consent h2")).to_have_text("Allow Acme Home to use your account?")
    expect(page.locator("#consent .scopes")).to_contain_text("See your devices")
    # The browser goes on to the app at its redirect URI (not served here: the app is
    # a third party), with the code.
    to_app = re.compile(r"^https://app\.example/")
    with page.expect_request(lambda request: to_app.match(request.url)) as landed:
        page.click("button[name=allow]")
    returned = urlsplit(landed.value.url)
    assert f"{returned.scheme}://{returned.netloc}{returned.path}" == flow.REDIRECT_URI
    query = parse_qs(returned.query)
    assert query["state"] == ["st-42"]

    tokens = post_form(
        live_server.url + flow.TOKEN,
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": flow.REDIRECT_URI,
            "client_id": app.client_id,
            "code_verifier": verifier,
        },
    )
    access = tokens["access_token"]
    status, me = get_json(f"{live_server.url}/v1.1/users/self", access)
    assert status == 200 and me["data"]["id"] == public_user_id(end_user)

    page.goto("/my/apps/")
    expect(page.locator(".granted-apps")).to_contain_text("devices:read users:read")
    page.click("button[aria-label='Revoke Acme Home']")
    expect(page.locator(".empty")).to_have_text("No app can use your account.")

    status, refused = get_json(f"{live_server.url}/v1.1/users/self", access)
    assert status == 401 and refused["error"]["code"] == 401
