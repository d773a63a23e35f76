"""The one implementation of a connector's device identity format.

Every path that accepts an identity (portal form, CSV import, management API,
device activation) calls `normalize_identity`, so a device is one identity no
matter how its MAC address digits were cased.
"""

import re
import uuid
from dataclasses import dataclass

OPAQUE = "opaque"
BASE10 = "base10"
HEX = "hex"
UUID4 = "uuid4"
MAC = "mac"
IDENTITY_TYPES = [
    (OPAQUE, "Opaque (any printable characters)"),
    (BASE10, "Base 10 number"),
    (HEX, "Hexadecimal"),
    (UUID4, "UUID version 4"),
    (MAC, "MAC address"),
]

MAC_COLON = "colon"
MAC_DASH = "dash"
MAC_PLAIN = "plain"
MAC_STYLES = [
    (MAC_COLON, "aa:bb:cc:dd:ee:ff"),
    (MAC_DASH, "aa-bb-cc-dd-ee-ff"),
    (MAC_PLAIN, "aabbccddeeff"),
]
MAC_EXAMPLES = dict(MAC_STYLES)
_MAC_PATTERNS = {
    MAC_COLON: re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"),
    MAC_DASH: re.compile(r"[0-9a-f]{2}(?:-[0-9a-f]{2}){5}"),
    MAC_PLAIN: re.compile(r"[0-9a-f]{12}"),
}
_BASE10 = re.compile(r"[0-9]+")
_HEX = re.compile(r"[0-9a-f]+")
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# Printable ASCII without whitespace: identities travel in URLs, CSV cells and
# certificate common names.
_OPAQUE = re.compile(r"[\x21-\x7e]+")
MAX_IDENTITY_LENGTH = 128


class InvalidIdentity(ValueError):
    """An identity that does not match its connector's format; the message says why."""


@dataclass(frozen=True)
class IdentityFormat:
    """A connector's identity rule: optional prefix, type, MAC style and length."""

    type: str = OPAQUE
    prefix: str = ""
    mac_style: str = MAC_COLON
    length: int | None = None

    def describe(self) -> str:
        """Say, in words, what an identity of this format looks like."""
        if self.type == MAC:
            body = f"a MAC address written {MAC_EXAMPLES[self.mac_style]}"
        elif self.type == UUID4:
            body = "a version 4 UUID (xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx)"
        else:
            kind = {
                OPAQUE: "printable characters without spaces",
                BASE10: "decimal digits",
                HEX: "hexadecimal digits",
            }[self.type]
            size = f"exactly {self.length} " if self.length else ""
            body = f"{size}{kind}"
        return f'"{self.prefix}" followed by {body}' if self.prefix else body

    def validate_definition(self) -> None:
        """Refuse formats that no identity could match."""
        if self.type not in dict(IDENTITY_TYPES):
            raise InvalidIdentity(f"unknown identity type {self.type!r}")
        if self.type == MAC and self.mac_style not in MAC_EXAMPLES:
            raise InvalidIdentity(f"unknown MAC style {self.mac_style!r}")
        if self.length is not None and not 1 <= self.length <= MAX_IDENTITY_LENGTH:
            raise InvalidIdentity(f"length must be between 1 and {MAX_IDENTITY_LENGTH}")
        if self.prefix and not _OPAQUE.fullmatch(self.prefix):
            raise InvalidIdentity("the prefix may hold printable characters only, no spaces")


def normalize_identity(raw: str, fmt: IdentityFormat) -> str:
    """Return the stored form of `raw` under `fmt`, or raise InvalidIdentity."""
    expected = f"expected {fmt.describe()}"
    if not isinstance(raw, str) or not raw:
        raise InvalidIdentity(f"identity is empty; {expected}")
    if len(raw) > len(fmt.prefix) + MAX_IDENTITY_LENGTH:
        raise InvalidIdentity(f"identity is longer than {MAX_IDENTITY_LENGTH} characters")
    if fmt.prefix and not raw.startswith(fmt.prefix):
        raise InvalidIdentity(f"identity must start with {fmt.prefix!r}; {expected}")
    body = raw[len(fmt.prefix) :]
    if not body:
        raise InvalidIdentity(f"nothing follows the prefix; {expected}")

    if fmt.type == OPAQUE:
        if not _OPAQUE.fullmatch(body):
            raise InvalidIdentity(f"identity holds spaces or unprintable characters; {expected}")
    elif fmt.type == BASE10:
        if not _BASE10.fullmatch(body):
            raise InvalidIdentity(f"identity holds non-digits; {expected}")
    elif fmt.type == HEX:
        body = body.lower()
        if not _HEX.fullmatch(body):
            raise InvalidIdentity(f"identity holds non-hexadecimal characters; {expected}")
    elif fmt.type == UUID4:
        body = body.lower()
        if not _UUID4.fullmatch(body) or str(uuid.UUID(body)) != body:
            raise InvalidIdentity(f"identity is not a version 4 UUID; {expected}")
    elif fmt.type == MAC:
        body = body.lower()
        if not _MAC_PATTERNS[fmt.mac_style].fullmatch(body):
            raise InvalidIdentity(f"identity is not a MAC address in this style; {expected}")
    else:
        raise InvalidIdentity(f"unknown identity type {fmt.type!r}")

    if fmt.length and fmt.type not in (MAC, UUID4) and len(body) != fmt.length:
        raise InvalidIdentity(f"identity has {len(body)} characters after the prefix; {expected}")
    return fmt.prefix + body
