"""Lines in the event log for what admins do to accounts: the device maker role
granted or taken, users and groups added, changed in what they may do, deleted.

Accounts belong to no connector, so these lines have none; the admin console's
event list shows them. Kept apart from accounts.services, which the permission
checks of every app import, so that it stays free of the log.
"""

from audit.events import Actor, record_event
from audit.models import Event


def _by(actor: Actor | None) -> str:
    return f" by {actor}" if actor else ""


def log_role_granted(user, *, actor: Actor | None, ip=None) -> None:
    record_event(
        None,
        "",
        Event.CHANGE,
        f"device maker role granted to {user.get_username()}{_by(actor)}",
        ip,
        actor=actor,
    )


def log_role_revoked(user, still: list[str], *, actor: Actor | None, ip=None) -> None:
    kept = f" (still a maker: {', '.join(still)})" if still else ""
    record_event(
        None,
        "",
        Event.CHANGE,
        f"device maker role taken from {user.get_username()}{kept}{_by(actor)}",
        ip,
        actor=actor,
    )


def access_of(user) -> dict:
    """What decides what an account may do, as the log shows it."""
    if user.pk is None:
        return {}
    return {
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        ),
    }


def log_user_saved(user, before: dict | None, *, actor: Actor | None, ip=None) -> None:
    """A `create` line for a new account, a `change` line naming what changed in its
    access (nothing for a change that leaves access as it was)."""
    name = user.get_username()
    if before is None:
        record_event(None, "", Event.CREATE, f"user {name} added{_by(actor)}", ip, actor=actor)
        return
    after = access_of(user)
    changes = [
        f"{key} {before[key]!r} → {after[key]!r}" for key in after if before[key] != after[key]
    ]
    if changes:
        record_event(
            None,
            "",
            Event.CHANGE,
            f"user {name} changed{_by(actor)}: " + "; ".join(changes),
            ip,
            actor=actor,
        )


def log_password_set(user, *, actor: Actor | None, ip=None) -> None:
    record_event(
        None,
        "",
        Event.CHANGE,
        f"password of user {user.get_username()} set{_by(actor)}",
        ip,
        actor=actor,
    )


def log_user_deleted(user, *, actor: Actor | None, ip=None) -> None:
    record_event(
        None, "", Event.DELETE, f"user {user.get_username()} deleted{_by(actor)}", ip, actor=actor
    )


def permissions_of(group) -> list[str]:
    if group.pk is None:
        return []
    return sorted(
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    )


def log_group_saved(group, before: list[str] | None, *, actor: Actor | None, ip=None) -> None:
    after = permissions_of(group)
    if before is None:
        what = f"group {group.name} added with permissions {after!r}"
    elif before != after:
        what = f"group {group.name} permissions {before!r} → {after!r}"
    else:
        return
    kind = Event.CREATE if before is None else Event.CHANGE
    record_event(None, "", kind, f"{what}{_by(actor)}", ip, actor=actor)


def log_group_deleted(group, *, actor: Actor | None, ip=None) -> None:
    record_event(None, "", Event.DELETE, f"group {group.name} deleted{_by(actor)}", ip, actor=actor)
