"""Bulk actions of the Devices tab: revoke, reset, delete, add or remove a tag.

Each device goes through its own service call (`devices.services`), so each
change is logged with the person who asked for it and credentials_changed
reaches the caches and the broker exactly as for a single device. A picked
handful runs during the request; every device a filter matches, when there
are many, runs on a worker (`devices.tasks.run_bulk_action`) a batch at a
time, and the page follows its progress.
"""

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.events import Actor
from connectors.models import Connector
from devices import services
from devices.models import BulkAction, Device

BATCH_SIZE = 100


def matching(connector: Connector, filters: dict) -> QuerySet:
    """The connector's devices the Devices tab's filters (status, tag, q) match."""
    devices = Device.objects.filter(connector=connector)
    if filters.get("status"):
        devices = devices.filter(status=filters["status"])
    if filters.get("tag"):
        devices = devices.tagged(*filters["tag"])
    if filters.get("q"):
        devices = devices.prefixed(connector, filters["q"])
    return devices


def affected(devices: QuerySet, action: str) -> QuerySet:
    """The devices an action would change: a revoked device is not revoked again."""
    if action == "revoke":
        return devices.exclude(status=Device.REVOKED)
    return devices


def apply(device: Device, action: str, tag, *, actor: Actor, ip=None) -> bool:
    """One device's change through its service; False when there was nothing to change."""
    try:
        if action == "revoke":
            services.revoke_device(device, actor=actor, ip=ip)
        elif action == "reset":
            services.reset_device(device, actor=actor, ip=ip)
        elif action == "delete":
            services.delete_device(device, actor=actor, ip=ip)
        elif action == "tag":
            return services.retag_device(device, add=tag, actor=actor, ip=ip)
        elif action == "untag":
            return services.retag_device(device, remove=tag, actor=actor, ip=ip)
        else:
            raise ValueError(f"unknown bulk action {action!r}")
    except services.DeviceError:
        return False
    return True


def run_now(devices: QuerySet, action: str, tag, *, actor: Actor, ip=None) -> int:
    """Apply `action` to each of `devices` here and now; how many changed."""
    changed = 0
    for device in affected(devices, action).select_related("connector").order_by("id"):
        changed += apply(device, action, tag, actor=actor, ip=ip)
    return changed


def inline_limit() -> int:
    return settings.DEVICE_BULK_INLINE_MAX


def start(
    connector: Connector,
    *,
    action: str,
    tag,
    filters: dict,
    total: int,
    user,
    run_later,
) -> BulkAction:
    """Record a bulk action on every matching device and hand it to a worker on commit."""
    ceiling = (
        Device.objects.filter(connector=connector)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    job = BulkAction.objects.create(
        connector=connector,
        created_by=user,
        action=action,
        tag=list(tag) if isinstance(tag, tuple) else tag,
        filters=filters,
        ceiling_id=ceiling or 0,
        total=total,
    )
    transaction.on_commit(lambda: run_later(job.pk))
    return job


def run(job_id: int) -> BulkAction | None:
    """Carry a bulk action on from where it got to, a batch per transaction, until done.

    Each batch locks the job row, so a second worker given the same job
    (a redelivery) waits and then carries on after the first one's batch.
    """
    job = BulkAction.objects.filter(pk=job_id).select_related("connector", "created_by").first()
    if job is None:
        return None
    actor = Actor(job.created_by, "portal")
    tag = tuple(job.tag) if job.action == "untag" else job.tag
    devices = affected(matching(job.connector, _filters(job.filters)), job.action)
    while True:
        with transaction.atomic():
            locked = BulkAction.objects.select_for_update().get(pk=job.pk)
            if locked.status in (BulkAction.DONE, BulkAction.FAILED):
                return locked
            batch = list(
                devices.filter(id__gt=locked.last_id, id__lte=locked.ceiling_id)
                .select_related("connector")
                .order_by("id")[:BATCH_SIZE]
            )
            if not batch:
                locked.status = BulkAction.DONE
                locked.processed = max(locked.processed, locked.total)
                locked.finished_at = timezone.now()
                locked.save(update_fields=["status", "processed", "finished_at", "updated_at"])
                return locked
            changed = sum(apply(device, job.action, tag, actor=actor) for device in batch)
            locked.status = BulkAction.RUNNING
            locked.last_id = batch[-1].pk
            locked.processed += len(batch)
            locked.total = max(locked.total, locked.processed)
            locked.changed += changed
            locked.save(
                update_fields=["status", "last_id", "processed", "total", "changed", "updated_at"]
            )


def _filters(saved: dict) -> dict:
    tag = saved.get("tag")
    return {**saved, "tag": tuple(tag) if tag else None}


def state(job: BulkAction) -> dict:
    """What the progress page shows and polls."""
    return {
        "id": job.pk,
        "action": job.action,
        "status": job.status,
        "status_label": job.get_status_display(),
        "finished": job.status in (BulkAction.DONE, BulkAction.FAILED),
        "total": job.total,
        "processed": job.processed,
        "changed": job.changed,
    }
