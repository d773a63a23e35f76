"""Typed readers for the settings: every value parsed when the settings load.

A value that cannot be parsed stops every process at start (`manage.py check`,
gunicorn, the worker) with ImproperlyConfigured naming the variable and what
was expected, instead of passing the checks and failing each request later.
Each reader takes `<NAME>` or `<NAME>_FILE` (django-environ's FileAwareEnv).
"""

import ipaddress
import re
import zoneinfo
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_DIGITS = re.compile(r"[0-9]+")
_RATE = re.compile(r"([0-9]+)/([0-9]+)")
_HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Environment:
    """The settings' view of the environment: one reader per kind of value."""

    def __init__(self, env: environ.FileAwareEnv):
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.str(name, default=None)
        return None if value is None else value.strip()

    @staticmethod
    def refuse(name: str, value: str | None, expected: str, *, show: bool = True) -> None:
        shown = f"{value!r}" if show else "the value given"
        raise ImproperlyConfigured(f"{name}: {shown} is not valid; expected {expected}")

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if not _DIGITS.fullmatch(value.removeprefix("-")) or int(value) < minimum:
            self.refuse(name, value, f"a whole number of at least {minimum}")
        return int(value)

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self._raw(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            number = None
        # float() also takes "nan" and "inf"; neither is a useful duration or interval.
        if number is None or not (minimum <= number < float("inf")):
            self.refuse(name, value, f"a number of at least {minimum:g}")
        return number

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None or value == "":
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() not in _FALSE:
            self.refuse(name, value, "true or false (also 1/0, yes/no, on/off)")
        return False

    def rate(self, name: str, default: str) -> str:
        """`<count>/<seconds>`, both at least 1, as core.ratelimit.Rate reads it."""
        value = self._raw(name) or default
        match = _RATE.fullmatch(value)
        if not match or int(match[1]) < 1 or int(match[2]) < 1:
            self.refuse(name, value, "<count>/<seconds> with both at least 1, e.g. 600/60")
        return value

    def text(self, name: str, default: str, *, choices=None) -> str:
        value = self._raw(name)
        value = default if value is None or value == "" else value
        if choices is not None and value not in choices:
            self.refuse(name, value, "one of " + ", ".join(sorted(choices)))
        return value

    def matching(self, name: str, default: str, pattern: str, expected: str) -> str:
        """A value that matches the regular expression `pattern` in full."""
        value = self.text(name, default)
        if not re.fullmatch(pattern, value):
            self.refuse(name, value, expected)
        return value

    def secret(self, name: str, default: str = "") -> str:
        """A secret as given (only surrounding whitespace and newlines removed)."""
        value = self._raw(name)
        return default if value is None else value

    def names(self, name: str, default: list[str]) -> list[str]:
        """A comma-separated list; blanks between commas are left out."""
        value = self._raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def addresses(self, name: str, default: list[str]) -> list[str]:
        """A list of IP addresses, each written as Python's ipaddress writes it."""
        result = []
        for item in self.names(name, default):
            try:
                result.append(str(ipaddress.ip_address(item)))
            except ValueError:
                self.refuse(name, item, "a comma-separated list of IP addresses")
        return result

    def origins(self, name: str, default: list[str]) -> list[str]:
        result = self.names(name, default)
        for origin in result:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                self.refuse(name, origin, "origins like https://gatehouse.example.com")
        return result

    def domain(self, name: str, default: str) -> str:
        value = self.text(name, default).lower().strip(".")
        if not all(_HOST_LABEL.fullmatch(label) for label in value.split(".")):
            self.refuse(name, value, "a DNS name such as devices.example.com")
        return value

    def time_zone(self, name: str, default: str) -> str:
        value = self.text(name, default)
        try:
            zoneinfo.ZoneInfo(value)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            self.refuse(name, value, "an IANA time zone such as UTC or Europe/Berlin")
        return value

    def log_level(self, name: str, default: str) -> str:
        value = self.text(name, default).upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            self.refuse(name, value, "DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    def url(self, name: str, default: str, *, schemes: set[str]) -> str:
        """A URL whose scheme is one of `schemes` (or empty where the default is);
        the value is never echoed, it may hold a password."""
        value = self._raw(name)
        value = default if value is None or value == "" else value
        if value == "":
            return value
        scheme = urlsplit(value).scheme if "://" in value else ""
        if scheme not in schemes:
            self.refuse(
                name, value, "a URL starting " + " or ".join(f"{s}://" for s in sorted(schemes)),
                show=False,
            )  # fmt: skip
        return value

    def database(self, name: str, default: str) -> dict:
        url = self.url(name, default, schemes={"sqlite", "postgres", "postgresql", "pgsql"})
        try:
            return environ.Env.db_url_config(url)
        except (ValueError, KeyError, ImproperlyConfigured):
            self.refuse(
                name, None, "a database URL like postgres://user@host:5432/name", show=False
            )

    def dotted_paths(self, name: str, default: list[str]) -> list[str]:
        """Importable classes (e.g. password hashers), imported now so a typo stops the start."""
        from django.utils.module_loading import import_string

        result = self.names(name, default)
        for path in result:
            try:
                import_string(path)
            except ImportError:
                self.refuse(name, path, "importable dotted paths of classes")
        if not result:
            self.refuse(name, "", "at least one dotted path")
        return result
