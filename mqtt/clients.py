"""What the broker should hold for a device, as dynamic-security commands.

- token and password devices: client `<connector id>/<identity>` with the
  device's secret, when Gatehouse has just been given it;
- certificate devices: client named by the certificate's CN (the broker takes
  the username from the certificate), no password, when no other device holds
  that username;
- either: a role `device:<connector id>/<identity>` with the device's ACLs
  (mqtt.topics);
- a device no longer provisioned: none of them (deleting a client disconnects
  its session).

`BrokerClient` rows remember which username each device holds, so a device's
client can be deleted after the device and its certificate are gone.
"""

import logging
from dataclasses import dataclass, field

from cryptography import x509
from django.db import IntegrityError, transaction

from audit.models import Event
from certificates.models import IssuedCertificate
from connectors.models import Connector
from core import crypto
from devices.models import Credential, Device
from devices.services import record_event
from mqtt import topics
from mqtt.models import BrokerClient

logger = logging.getLogger(__name__)
SECRET_MODES = (Connector.TOKEN, Connector.PASSWORD)


@dataclass
class Plan:
    commands: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the log; never a secret


def remove(plan: Plan, device_id: int | None, connector_id: str, identity: str) -> None:
    """Delete every client the device holds (and the one its identity names) and its role."""
    names = {topics.username(connector_id, identity)}
    if device_id is not None:
        held = BrokerClient.objects.filter(device_id=device_id)
        names.update(held.values_list("username", flat=True))
        held.delete()
    for name in sorted(names):
        plan.commands.append({"command": "deleteClient", "username": name})
        plan.notes.append(f"removed {name}")
    plan.commands.append(
        {"command": "deleteRole", "rolename": topics.role_name(connector_id, identity)}
    )


def _create(plan: Plan, state: dict, name: str, password: str | None, filters=()) -> None:
    connector_id, identity = state["connector_id"], state["identity"]
    role = topics.role_name(connector_id, identity)
    client = {"command": "createClient", "username": name, "roles": [{"rolename": role}]}
    if password is not None:
        client["password"] = password
    plan.commands += [
        {
            "command": "createRole",
            "rolename": role,
            "acls": topics.device_acls(connector_id, identity, filters),
        },
        client,
    ]
    plan.notes.append(f"created {name}")


def _claim(state: dict, name: str) -> bool:
    """Record that the device holds `name`; False if another device holds it."""
    try:
        with transaction.atomic():
            BrokerClient.objects.create(
                username=name,
                device_id=state["pk"],
                connector_id=state["connector_id"],
                identity=state["identity"],
            )
    except IntegrityError:
        return False
    return True


def add_secret_device(plan: Plan, state: dict, secret: str) -> None:
    remove(plan, state["pk"], state["connector_id"], state["identity"])
    name = topics.username(state["connector_id"], state["identity"])
    if _claim(state, name):
        _create(plan, state, name, secret)


def _active_certificate(device_id: int) -> tuple[str, list[str]] | None:
    """(CN, bound topic filters) of the device's active certificate."""
    credential = (
        Credential.objects.filter(
            device_id=device_id, kind=Connector.CERTIFICATE, state=Credential.ACTIVE
        )
        .values("certificate_pem", "fingerprint")
        .first()
    )
    if credential is None or not credential["certificate_pem"]:
        return None
    try:
        cert = crypto.load_certificate(credential["certificate_pem"])
        common_name = crypto.common_name_of(cert.subject)
    except (crypto.CryptoError, ValueError, x509.AttributeNotFound):
        return None
    issued = (
        IssuedCertificate.objects.filter(fingerprint=credential["fingerprint"])
        .values_list("topics", flat=True)
        .first()
    )
    return common_name, list(issued or [])


def add_certificate_device(plan: Plan, state: dict) -> None:
    remove(plan, state["pk"], state["connector_id"], state["identity"])
    found = _active_certificate(state["pk"])
    if found is None:
        return
    common_name, filters = found
    if _claim(state, common_name):
        _create(plan, state, common_name, None, filters)
        return
    # Fail closed: the broker cannot tell two certificates with one CN apart.
    record_event(
        state["connector_id"],
        state["identity"],
        Event.AUTH_FAILED,
        f"MQTT: certificate CN {common_name!r} is already used on the broker by another "
        "device; not admitted over MQTT",
        None,
    )
    plan.notes.append(f"refused CN {common_name} (held by another device)")


def plan_devices(targets: dict[int, tuple[str, str]], secrets: dict[int, str], states) -> Plan:
    """Commands bringing the broker in step for `targets` (device id -> (connector, identity))."""
    plan = Plan()
    for pk, (connector_id, identity) in targets.items():
        state = states.get(pk)
        if state is None or state["status"] != Device.PROVISIONED:
            remove(plan, pk, connector_id, identity)
        elif state["auth_mode"] == Connector.CERTIFICATE:
            add_certificate_device(plan, state)
        elif pk in secrets and state["auth_mode"] in SECRET_MODES:
            add_secret_device(plan, state, secrets[pk])
    return plan
