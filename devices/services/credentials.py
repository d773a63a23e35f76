"""Device secrets: tokens, and the key under which a verified password is remembered."""

import hashlib
import hmac
import secrets

from django.conf import settings

TOKEN_LENGTH = 40
MIN_PASSWORD_BYTES = 20
MAX_PASSWORD_BYTES = 1024


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """40 characters from 240 random bits (base64url alphabet)."""
    return secrets.token_urlsafe(30)[:TOKEN_LENGTH]


def password_cache_key(connector_id: str, identity: str, password: str) -> str:
    # A fast keyed hash of what was presented: the clear password never reaches the cache.
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"{connector_id}\0{identity}\0{password}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return f"devpw:{digest}"
