"""Issuing and deleting management API tokens, each logged with who did it.

Tokens belong to no connector, so their lines sit in the log without one; the
admin console's event list shows them. Apart from accounts.services, which the
permission checks of every app import, so that it stays free of the log.
"""

from django.db import transaction

from accounts.models import ApiToken
from audit.events import Actor, record_event
from audit.models import Event


def _describe(row: ApiToken) -> str:
    label = f" “{row.name}”" if row.name else ""
    return f"API token {row.prefix}…{label} of {row.user.get_username()}"


def issue_api_token(user, name: str = "", *, actor: Actor | None, ip=None) -> tuple[ApiToken, str]:
    """A new token for `user`: the row and the clear token, which is never stored."""
    with transaction.atomic():
        row, token = ApiToken.issue(user, name)
        record_event(None, "", Event.CREATE, f"{_describe(row)} issued by {actor}", ip, actor=actor)
    return row, token


def rename_api_token(row: ApiToken, old_name: str, *, actor: Actor | None, ip=None) -> None:
    """Log a rename already saved (the admin's change form)."""
    if old_name != row.name:
        record_event(
            None,
            "",
            Event.CHANGE,
            f"{_describe(row)} renamed from “{old_name}” by {actor}",
            ip,
            actor=actor,
        )


def delete_api_token(row: ApiToken, *, actor: Actor | None, ip=None) -> None:
    with transaction.atomic():
        record_event(
            None, "", Event.DELETE, f"{_describe(row)} deleted by {actor}", ip, actor=actor
        )
        row.delete()
