import hashlib
import secrets

from django.conf import settings
from django.db import models


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A management API token; the token is shown once and stored only as a hash."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # First characters, so a user can tell tokens apart without the secret.
    prefix = models.CharField(max_length=8, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The device maker role lives here for want of a better home: a permission needs a
        # model, and API tokens are one of the things only device makers may hold.
        permissions = [
            ("device_maker", "Is a device maker: uses the console and the management API"),
        ]

    def __str__(self):
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user, name: str = "") -> tuple["ApiToken", str]:
        """Create a token for `user`; return the row and the clear token (shown once)."""
        token = "gh_" + secrets.token_urlsafe(32)
        row = cls.objects.create(
            user=user, name=name, token_hash=hash_api_token(token), prefix=token[:8]
        )
        return row, token
