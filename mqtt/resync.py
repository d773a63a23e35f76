"""Rebuilding the broker's clients and roles from the database: `manage.py mqtt_resync`.

What it can repair on a running broker: default-deny ACL access, the ingest's
client, device clients and roles that should not be there (deleted, revoked,
reset devices), device roles that went missing, and secrets still waiting in
the outbox. What it cannot: a token or password device missing from the broker
whose secret the broker never kept — Gatehouse has only its hash; the report
names them (docs/mqtt.md, "A new broker or a lost file").
"""

import re
from dataclasses import dataclass, field

from django.db import transaction

from connectors.models import Connector
from devices.models import Device
from mqtt import clients, dynsec, sync, topics
from mqtt.models import BrokerClient

DEVICE_USERNAME = re.compile(r"dt[0-9a-f]{32}/.+")
CHUNK = 1000


@dataclass
class Report:
    removed: list[str] = field(default_factory=list)
    roles_restored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    kept: int = 0
    outbox: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [
            f"kept {self.kept} device client(s)",
            f"removed {len(self.removed)} client(s) of devices not provisioned",
            f"restored {len(self.roles_restored)} missing device role(s)",
            f"sent {self.outbox} queued change(s)",
        ]
        lines += [f"  removed {name}" for name in self.removed[:50]]
        lines += [f"  role restored {name}" for name in self.roles_restored[:50]]
        if self.missing:
            lines.append(
                f"{len(self.missing)} provisioned device(s) have no broker client and no secret "
                "Gatehouse could give it: reset them (or restore the broker's file)"
            )
            lines += [f"  missing {name}" for name in self.missing[:50]]
        lines += [f"broker refused: {problem}" for problem in self.problems]
        return lines


def _provisioned() -> dict[int, dict]:
    rows = Device.objects.filter(status=Device.PROVISIONED).values(
        "pk", "connector_id", "identity", "status", "auth_mode", "credential_version"
    )
    return {row["pk"]: row for row in rows.iterator(chunk_size=5000)}


def resync(client: dynsec.Dynsec, *, dry_run: bool = False) -> Report:
    report = Report()
    plan = clients.Plan()
    plan.commands.append(
        {"command": "setDefaultACLAccess", "acls": [
            {"acltype": kind, "allow": False}
            for kind in ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
        ]}
    )  # fmt: skip
    devices = _provisioned()
    held = {row.username: row for row in BrokerClient.objects.all()}
    on_broker = set(client.list_clients())
    roles = set(client.list_roles())
    # Clients of devices: those Gatehouse recorded, and any named like one.
    for name in sorted(n for n in on_broker if n in held or DEVICE_USERNAME.fullmatch(n)):
        row = held.get(name)
        if row is not None and row.device_id in devices:
            report.kept += 1
            state = devices[row.device_id]
            role = topics.role_name(state["connector_id"], state["identity"])
            if role not in roles and state["auth_mode"] in clients.SECRET_MODES:
                plan.commands += [
                    {"command": "createRole", "rolename": role,
                     "acls": topics.device_acls(state["connector_id"], state["identity"])},
                    {"command": "addClientRole", "username": name, "rolename": role},
                ]  # fmt: skip
                report.roles_restored.append(name)
            continue
        report.removed.append(name)
        if row is not None:
            clients.remove(plan, row.device_id, row.connector_id, row.identity)
        else:
            plan.commands.append({"command": "deleteClient", "username": name})
    for name, row in held.items():
        if name not in on_broker and row.device_id in devices:
            state = devices[row.device_id]
            if state["auth_mode"] == Connector.CERTIFICATE:
                clients.add_certificate_device(plan, state)  # no secret needed
            else:
                report.missing.append(name)
    for state in devices.values():
        name = topics.username(state["connector_id"], state["identity"])
        if state["auth_mode"] in clients.SECRET_MODES and name not in held:
            report.missing.append(name)
    if dry_run:
        transaction.set_rollback(True)
        return report
    sync.ensure_service_clients(client)
    for start in range(0, len(plan.commands), CHUNK):
        report.problems += sync.send(client, plan.commands[start : start + CHUNK])
    while handled := sync.flush(client):
        report.outbox += handled
    still = set(client.list_clients())
    report.missing = sorted(name for name in report.missing if name not in still)
    return report
