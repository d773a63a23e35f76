"""Sealing a device secret for the few seconds between its issue and the broker.

AES-256-GCM under a key derived from SECRET_KEY, bound to the device and its
credential version (the associated data), so a sealed secret is useless
without the key and cannot be moved to another device.
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"gatehouse mqtt pending device secret v1"


class Unsealable(ValueError):
    """Sealed under another key or for another device: the secret is lost."""


def _key() -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        settings.SECRET_KEY.encode()
    )


def _bound(device_id: int, credential_version: int) -> bytes:
    return f"{device_id}:{credential_version}".encode()


def seal(secret: str, device_id: int, credential_version: int) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(_key()).encrypt(
        nonce, secret.encode(), _bound(device_id, credential_version)
    )


def unseal(sealed: bytes, device_id: int, credential_version: int) -> str:
    sealed = bytes(sealed)
    try:
        clear = AESGCM(_key()).decrypt(
            sealed[:12], sealed[12:], _bound(device_id, credential_version)
        )
    except (InvalidTag, ValueError) as exc:
        raise Unsealable("sealed under another key or for another device") from exc
    return clear.decode()
