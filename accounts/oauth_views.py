"""The OAuth 2.0 endpoints companion apps call: the toolkit's views, the token
endpoint behind a per-address rate limit.

Only these three: the toolkit's own app-management and granted-token pages are not
served (apps are registered under the maker's account, accounts/views.py).
"""

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from oauth2_provider import views as toolkit

from core import ratelimit
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


authorize = never_cache(toolkit.AuthorizationView.as_view())
token = TokenView.as_view()
revoke_token = toolkit.RevokeTokenView.as_view()
