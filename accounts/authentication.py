from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.models import ApiToken, hash_api_token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api-token>` for the management API."""

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None
        token = token.strip()
        if not token:
            raise exceptions.AuthenticationFailed("Bearer token missing.")
        row = (
            ApiToken.objects.select_related("user")
            .filter(token_hash=hash_api_token(token), user__is_active=True)
            .first()
        )
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid API token.")
        now = timezone.now()
        if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        return row.user, row

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
