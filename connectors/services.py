"""Admin actions on connectors and their resources, each logged with who did it.

The portal, the management API and the Django admin save connectors and
resources through their own forms and serializers, then call one of these; so
every door leaves the same line in the connector's log. A connector's log
outlives the connector (audit.models.Event), so its `delete` line says what
it was called and what went with it.
"""

from django.db import transaction

from audit.events import Actor, record_event
from audit.models import Event
from connectors.models import Connector, Resource

# What the log reports when it changes (the id and creation time never do);
# the first three are read specially by settings_of.
SETTINGS = (
    "name",
    "owner",
    "managers",
    "identity_prefix",
    "identity_type",
    "identity_mac_style",
    "identity_length",
    "auth_mode",
    "self_registration",
    "ip_allowlist",
    "activation_window_seconds",
)


def settings_of(connector: Connector) -> dict:
    """The connector's settings as the log shows them, to compare before and after a save."""
    shown = {name: getattr(connector, name) for name in SETTINGS[3:]}
    shown["name"] = connector.name
    shown["owner"] = connector.owner.get_username() if connector.owner_id else None
    shown["managers"] = (
        sorted(user.get_username() for user in connector.managers.all()) if connector.pk else []
    )
    return shown


def _by(actor: Actor | None) -> str:
    return f" by {actor}" if actor else ""


def log_connector_created(connector: Connector, *, actor: Actor | None, ip=None) -> None:
    record_event(
        connector.pk,
        "",
        Event.CREATE,
        f"connector “{connector.name}” created ({connector.auth_mode}){_by(actor)}",
        ip,
        actor=actor,
    )


def log_connector_changed(
    connector: Connector, before: dict, *, actor: Actor | None, ip=None
) -> None:
    """One `change` line naming each setting that changed, old → new; none if nothing did."""
    after = settings_of(connector)
    changes = [
        f"{name} {before.get(name)!r} → {after[name]!r}"
        for name in SETTINGS
        if before.get(name) != after[name]
    ]
    if changes:
        record_event(
            connector.pk,
            "",
            Event.CHANGE,
            f"settings changed{_by(actor)}: " + "; ".join(changes),
            ip,
            actor=actor,
        )


def _contents(connector: Connector) -> str:
    counts = [
        (connector.devices.count(), "device"),
        (connector.resources.count(), "alias"),
        (connector.trust_anchors.count(), "trust anchor"),
    ]
    return ", ".join(f"{count} {noun}{'' if count == 1 else 's'}" for count, noun in counts)


def delete_connector(connector: Connector, *, actor: Actor | None, ip=None) -> None:
    """Delete the connector and everything it holds except its log, which says so."""
    with transaction.atomic():
        record_event(
            connector.pk,
            "",
            Event.DELETE,
            f"connector “{connector.name}” deleted with {_contents(connector)}{_by(actor)}",
            ip,
            actor=actor,
        )
        # The devices app hears the delete (pre_delete) and says its devices'
        # credentials changed, whichever door the delete came through.
        connector.delete()


def log_resource_defined(resource: Resource, *, actor: Actor | None, ip=None) -> None:
    record_event(
        resource.connector_id,
        "",
        Event.CREATE,
        f"alias “{resource.alias}” defined ({resource.format}){_by(actor)}",
        ip,
        actor=actor,
    )


def log_resource_changed(
    resource: Resource, before: tuple[str, str], *, actor: Actor | None, ip=None
) -> None:
    """`before` is the (alias, format) the resource had."""
    after = (resource.alias, resource.format)
    if before != after:
        record_event(
            resource.connector_id,
            "",
            Event.CHANGE,
            f"alias “{before[0]}” ({before[1]}) is now “{after[0]}” ({after[1]}){_by(actor)}",
            ip,
            actor=actor,
        )


def log_resource_removed(resource: Resource, *, actor: Actor | None, ip=None) -> None:
    record_event(
        resource.connector_id,
        "",
        Event.DELETE,
        f"alias “{resource.alias}” removed{_by(actor)}",
        ip,
        actor=actor,
    )


def delete_resource(resource: Resource, *, actor: Actor | None, ip=None) -> None:
    """Remove an alias; its stored data points stay."""
    with transaction.atomic():
        log_resource_removed(resource, actor=actor, ip=ip)
        resource.delete()
