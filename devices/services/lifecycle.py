"""Admin actions on devices, the expiry sweep and retention."""

from datetime import timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from audit import counts
from audit.events import Actor, record_event
from audit.models import Event
from devices.models import Credential, DataPoint, Device
from devices.services.credentials import credentials_changed
from devices.services.errors import InvalidTransition
from devices.services.whitelist import activation_deadline, validate_tags


def drop_credentials(device: Device, now) -> None:
    device.credentials.filter(state__in=[Credential.ACTIVE, Credential.INACTIVE]).update(
        state=Credential.REVOKED, revoked_at=now
    )


def reset_device(
    device: Device, *, window_seconds: int | None = None, actor: Actor | None = None, ip=None
) -> Device:
    """Back to whitelisted with a fresh window and no credentials."""
    now = timezone.now()
    with transaction.atomic():
        drop_credentials(device, now)
        Device.objects.filter(pk=device.pk).update(
            status=Device.WHITELISTED,
            activation_expires_at=activation_deadline(device.connector, window_seconds),
            provisioned_at=None,
            auth_mode="",
            connect_by=None,
        )
        record_event(
            device.connector_id, device.identity, Event.RESET, str(actor or ""), ip, actor=actor
        )
        credentials_changed("reset", device.connector_id, [device])
    device.refresh_from_db()
    return device


def revoke_device(device: Device, *, actor: Actor | None = None, ip=None) -> Device:
    """Revoke every credential; the device is refused until an admin resets it."""
    if device.status == Device.REVOKED:
        raise InvalidTransition("the device is already revoked")
    now = timezone.now()
    with transaction.atomic():
        drop_credentials(device, now)
        Device.objects.filter(pk=device.pk).update(status=Device.REVOKED)
        record_event(
            device.connector_id, device.identity, Event.REVOKE, str(actor or ""), ip, actor=actor
        )
        credentials_changed("revoked", device.connector_id, [device])
    device.refresh_from_db()
    return device


def _shown(value) -> str:
    return repr(str(value)) if isinstance(value, models.Model) else repr(value)


def log_device_changed(device: Device, before: dict, *, actor: Actor | None, ip=None) -> None:
    """One `change` line naming each field (of `before`) that changed, old → new."""
    changes = "; ".join(
        f"{name} {_shown(old)} → {_shown(getattr(device, name))}"
        for name, old in before.items()
        if old != getattr(device, name)
    )
    if changes:
        record_event(
            device.connector_id,
            device.identity,
            Event.CHANGE,
            f"changed by {actor}: {changes}" if actor else f"changed: {changes}",
            ip,
            actor=actor,
        )


def edit_device(
    device: Device, *, name: str, tags: list, actor: Actor | None = None, ip=None
) -> bool:
    """Set a device's name and tags (checked as `validate_tags` checks them).

    Returns whether anything changed; a change is logged like any other edit,
    in the transaction that makes it.
    """
    tags = validate_tags(tags)
    with transaction.atomic():
        locked = Device.objects.select_for_update().only("id", "name", "tags").get(pk=device.pk)
        before = {"name": locked.name, "tags": locked.tags}
        if before == {"name": name, "tags": tags}:
            device.name, device.tags = name, tags
            return False
        Device.objects.filter(pk=device.pk).update(name=name, tags=tags)
        device.name, device.tags = name, tags
        log_device_changed(device, before, actor=actor, ip=ip)
    return True


def delete_device(device: Device, *, actor: Actor | None = None, ip=None) -> None:
    """Remove a device; its events stay (the log outlives what it describes)."""
    with transaction.atomic():
        record_event(
            device.connector_id, device.identity, Event.DELETE, str(actor or ""), ip, actor=actor
        )
        credentials_changed("deleted", device.connector_id, [device])
        device.delete()


def retag_device(
    device: Device,
    *,
    add: dict | None = None,
    remove: tuple[str, str | None] | None = None,
    actor: Actor | None = None,
    ip=None,
) -> bool:
    """Add a tag (replacing any of the same name) or remove one (by name, or name and value).

    Returns whether the tags changed; a change is logged like any other edit.
    """
    with transaction.atomic():
        locked = Device.objects.select_for_update().only("id", "tags").get(pk=device.pk)
        tags = list(locked.tags or [])
        if remove is not None:
            name, value = remove
            tags = [
                tag
                for tag in tags
                if not (tag["name"] == name and (value is None or tag["value"] == value))
            ]
        if add is not None:
            tags = [tag for tag in tags if tag["name"] != add["name"]] + [add]
        tags = validate_tags(tags)
        if tags == locked.tags:
            device.tags = tags
            return False
        Device.objects.filter(pk=device.pk).update(tags=tags)
        before = {"tags": locked.tags}
        device.tags = tags
        log_device_changed(device, before, actor=actor, ip=ip)
    return True


def delete_records(queryset, *, actor: Actor, ip=None) -> int:
    """Delete rows an admin picked (data points, messages, import records), with one
    `delete` line per device, or per connector for rows of no device, naming who did it.

    The rows are read, logged and deleted in one transaction, so a line always
    names what actually went.
    """
    model = queryset.model
    by_device = any(field.name == "device" for field in model._meta.fields)
    where = ["device__connector_id", "device__identity"] if by_device else ["connector_id"]
    noun = model._meta.verbose_name
    with transaction.atomic():
        ids = list(queryset.select_for_update().values_list("pk", flat=True))
        rows = model.objects.filter(pk__in=ids)
        for group in rows.values(*where).annotate(count=models.Count("pk")).order_by(*where):
            record_event(
                group[where[0]],
                group["device__identity"] if by_device else "",
                Event.DELETE,
                f"{group['count']} {noun}(s) deleted by {actor}",
                ip,
                actor=actor,
            )
        rows.delete()
    return len(ids)


def expire_stale_whitelist(batch_size: int | None = None) -> int:
    """Mark whitelisted entries past their window `expired`, in batches."""
    return expire_in_batches(
        Device,
        models.Q(status=Device.WHITELISTED),
        deadline="activation_expires_at",
        expired=Device.EXPIRED,
        identity="identity",
        reason=lambda row: "activation window passed",
        batch_size=batch_size,
    )


def expire_in_batches(
    model,
    pending: models.Q,
    *,
    deadline: str,
    expired: str,
    identity: str,
    reason,
    extra: tuple[str, ...] = (),
    batch_size: int | None = None,
) -> int:
    """Set `status = expired` on the `pending` rows of `model` whose `deadline` has
    passed, a batch at a time, with an `expire` event for each; the number expired.

    Each batch claims its rows under `FOR UPDATE SKIP LOCKED` (PostgreSQL) and the
    update re-checks `pending`, so two workers never handle one row twice. `reason`
    gets each row as (pk, connector_id, identity, *extra).
    """
    batch_size = batch_size or settings.EXPIRY_BATCH_SIZE
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                model.objects.select_for_update(skip_locked=True)
                .filter(pending, **{f"{deadline}__lte": now})
                .order_by(deadline)
                .values_list("pk", "connector_id", identity, *extra)[:batch_size]
            )
            if not rows:
                return total
            claimed = model.objects.filter(pending, pk__in=[row[0] for row in rows]).update(
                status=expired
            )
            Event.objects.bulk_create(
                Event(connector_id=row[1], identity=row[2], kind=Event.EXPIRE, reason=reason(row))
                for row in rows
            )
        total += claimed
        if len(rows) < batch_size:
            return total


def purge_old_records(batch_size: int = 10_000) -> dict[str, int]:
    """Delete events and data points older than their retention, a batch at a time.

    Batches keep each transaction short so writes from devices never wait long.
    A retention of 0 days keeps records forever.
    """
    purged = {}
    for model, days in (
        (Event, settings.EVENT_RETENTION_DAYS),
        (DataPoint, settings.DATA_RETENTION_DAYS),
    ):
        count = 0
        if days:
            cutoff = timezone.now() - timedelta(days=days)
            while True:
                ids = list(
                    model.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                        :batch_size
                    ]
                )
                if not ids:
                    break
                # A raw delete: events refuse updates, and there are no signals to run.
                count += model.objects.filter(pk__in=ids)._raw_delete(model.objects.db)
        purged[model._meta.model_name] = count
    purged["eventcount"] = counts.forget_before(timezone.now() - counts.KEPT)
    return purged
