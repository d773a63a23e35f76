"""Broker usernames, device topics and their ACLs (docs/mqtt.md, "Topics").

A device's namespace is `<connector id>/<identity>`, the identity escaped so it
is exactly one topic level: `%`, `/`, `+`, `#` and anything outside printable
ASCII are percent-encoded (UTF-8). Below it:

    <namespace>/resource/<alias>    device -> Gatehouse: one value
    <namespace>/resource.batch      device -> Gatehouse: a JSON object alias -> value
    <namespace>/command/<alias>     Gatehouse -> device (mqtt.commands)

A device may publish and subscribe in its namespace and in the topic filters
bound to its certificate, nowhere else (the broker denies by default).
"""

import re
from urllib.parse import quote, unquote

from certificates.topics import InvalidTopicFilter, check_topic_filter

CONNECTOR_ID = re.compile(r"dt[0-9a-f]{32}")
# Printable ASCII that means nothing to MQTT topic matching and never starts `$`.
_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) not in "%/+#")
SHARE_GROUP = "gatehouse"
INGEST_USERNAME = "gatehouse-ingest"
INGEST_ROLE = "gatehouse-ingest"
DEVICE_ROLE_PREFIX = "device:"


class TopicError(ValueError):
    """A topic or topic filter MQTT would refuse, or one outside what Gatehouse reads."""


def username(connector_id: str, identity: str) -> str:
    """The broker username of a token or password device: unique, since connector ids
    have a fixed form without `/` and identities are unique per connector."""
    return f"{connector_id}/{identity}"


def role_name(connector_id: str, identity: str) -> str:
    return DEVICE_ROLE_PREFIX + username(connector_id, identity)


def escape_identity(identity: str) -> str:
    return quote(identity, safe=_SAFE)


def namespace(connector_id: str, identity: str) -> str:
    return f"{connector_id}/{escape_identity(identity)}"


# Suffixes of every device namespace: only the device itself may use them.
_DEVICE_TOPICS = ("+/+/resource/#", "+/+/resource.batch", "+/+/command/#")
_MESSAGE_ACLS = ("publishClientSend", "publishClientReceive")


def device_acls(connector_id: str, identity: str, extra_filters=()) -> list[dict]:
    """The ACLs of a device's role, checked highest priority first: not publishing to its
    own command topics; its own namespace;
    then no other device's resource or command topics; then the filters bound to its
    certificate, which are the connector's: `sensors/#` grants `<connector id>/sensors/#`."""

    def acl(kind, topic, allow, priority):
        return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}

    own = namespace(connector_id, identity) + "/#"
    # Its command topics are Gatehouse's to publish to: the device only listens there.
    acls = [acl("publishClientSend", namespace(connector_id, identity) + "/command/#", False, 40)]
    acls += [acl(kind, own, True, 30) for kind in (*_MESSAGE_ACLS, "subscribePattern")]
    acls += [acl(kind, topic, False, 20) for topic in _DEVICE_TOPICS for kind in _MESSAGE_ACLS]
    for topic_filter in dict.fromkeys(extra_filters):
        try:
            granted = f"{connector_id}/{check_topic_filter(topic_filter)}"
        except InvalidTopicFilter:
            continue  # stored before filters were checked; never widened into a grant
        acls += [acl(kind, granted, True, 10) for kind in (*_MESSAGE_ACLS, "subscribePattern")]
    acls.append(acl("unsubscribePattern", "#", True, 0))
    return acls


def ingest_acls() -> list[dict]:
    acls = []
    for suffix in ("resource/+", "resource.batch"):
        acls.append(
            {
                "acltype": "subscribePattern",
                "topic": f"$share/{SHARE_GROUP}/+/+/{suffix}",
                "allow": True,
            }
        )
        acls.append({"acltype": "publishClientReceive", "topic": f"+/+/{suffix}", "allow": True})
    acls.append({"acltype": "publishClientSend", "topic": "+/+/command/+", "allow": True})
    return acls


def ingest_subscriptions() -> list[str]:
    return [f"$share/{SHARE_GROUP}/+/+/resource/+", f"$share/{SHARE_GROUP}/+/+/resource.batch"]


def parse_device_topic(topic: str) -> tuple[str, str, str, str | None]:
    """(connector id, identity, kind, alias) of a topic in a device namespace."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[2] == "resource":
        kind, alias = "resource", parts[3]
    elif len(parts) == 3 and parts[2] == "resource.batch":
        kind, alias = "batch", None
    else:
        raise TopicError(f"{topic[:200]!r} is not a resource topic")
    if not CONNECTOR_ID.fullmatch(parts[0]):
        raise TopicError(f"{parts[0][:40]!r} is not a connector id")
    return parts[0], unquote(parts[1], errors="strict"), kind, alias


def command_topic(connector_id: str, identity: str, alias: str) -> str:
    return f"{namespace(connector_id, identity)}/command/{alias}"
