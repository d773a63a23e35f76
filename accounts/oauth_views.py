"""The OAuth 2.0 endpoints companion apps call: the toolkit's views, the token
endpoint behind a per-address rate limit.

Only these three: the toolkit's own app-management and granted-token pages are not
served (apps are registered under the maker's account, accounts/views.py).
"""

import re
from urllib.parse import urlsplit

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from oauth2_provider import views as toolkit

from core import csp, ratelimit
from core.net import client_ip


class TokenView(toolkit.TokenView):
    """POST /oauth/token/: every grant, at most RATE_LIMIT_OAUTH_TOKEN per address, so
    client secrets, codes and refresh tokens are not guessed faster than that."""

    def post(self, request, *args, **kwargs):
        rate = ratelimit.Rate.parse(settings.RATE_LIMIT_OAUTH_TOKEN)
        try:
            ratelimit.hit("oauth-token", str(client_ip(request)), rate)
        except ratelimit.RateLimited as exc:
            response = JsonResponse(
                {
                    "error": "invalid_request",
                    "error_description": (
                        f"too many token requests; retry after {exc.retry_after} s"
                    ),
                },
                status=429,
            )
            response["Retry-After"] = str(exc.retry_after)
            response["Cache-Control"] = "no-store"
            return response
        return super().post(request, *args, **kwargs)


# What a redirect URI's origin must look like to be named in a policy: https, a host
# name or address, an optional port; nothing a policy would read as more sources.
ORIGIN = re.compile(r"https://[a-z0-9.-]+(:[0-9]{1,5})?")


def redirect_origin(redirect_uri: str) -> str | None:
    parts = urlsplit(redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return origin if ORIGIN.fullmatch(origin) else None


class AuthorizationView(toolkit.AuthorizationView):
    """GET /oauth/authorize/: the consent page, whose form posts back here and is
    answered with a redirect to the app. Browsers hold that redirect to the page's
    `form-action`, so the consent page also allows the origin of the app's redirect
    URI (one it registered, matched exactly), and nothing else."""

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        application, redirect_uri = context.get("application"), context.get("redirect_uri")
        if "error" in context or application is None or not redirect_uri:
            return response
        origin = redirect_origin(redirect_uri)
        if origin and application.redirect_uri_allowed(redirect_uri):
            csp.extend(response, form_action=[origin])
        return response


authorize = never_cache(AuthorizationView.as_view())
token = TokenView.as_view()
revoke_token = toolkit.RevokeTokenView.as_view()
