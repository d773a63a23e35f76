"""Refusals the services raise, and the one way every API turns them into a status.

Each app's refusals derive from `Refusal` (devices, registrations, certificates);
each dialect (device API, secure device API, management API, portal pages) keeps
its own table of refusal class → HTTP status and asks `status_for`, which walks
the class hierarchy, so a new refusal that nobody listed still gets a sane 4xx
(and a log line saying it should be listed) instead of a 500.
"""

import logging

from rest_framework import exceptions

logger = logging.getLogger(__name__)


class Refusal(Exception):
    """Base of every refusal a caller can be told about; the message says why."""

    default_message = "refused"

    def __init__(self, message: str = ""):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


def status_for(error: Exception, table: dict[type, int], default: int = 400) -> int:
    """The status listed for the nearest class of `error` in `table`, else `default`."""
    for cls in type(error).__mro__:
        status = table.get(cls)
        if status is not None:
            return status
    logger.warning(
        "refusal %s.%s has no status listed; answering %s",
        type(error).__module__,
        type(error).__qualname__,
        default,
    )
    return default


class Refused(exceptions.APIException):
    """A `Refusal` raised through a DRF view, with the status its dialect's table gives."""

    def __init__(self, error: Refusal, table: dict[type, int]):
        self.status_code = status_for(error, table)
        super().__init__(error.message)
