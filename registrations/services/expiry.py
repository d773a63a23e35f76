"""Ending what outlived its time: pending registrations past their deadline, and
ended registrations and messages past their retention."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Event
from devices import services as device_services
from registrations.models import Message, Registration


def expire_if_due(registration: Registration, now=None) -> None:
    """Expire on read, so a request past its deadline ends even when no worker runs."""
    now = now or timezone.now()
    if registration.status not in Registration.PENDING or registration.expires_at > now:
        return
    claimed = Registration.objects.filter(
        pk=registration.pk, status__in=Registration.PENDING, expires_at__lte=now
    ).update(status=Registration.EXPIRED)
    if claimed:
        device_services.record_event(
            registration.connector_id,
            registration.vendor_device_id,
            Event.EXPIRE,
            f"registration {registration.rid} expired before it was completed",
        )
    registration.refresh_from_db(fields=["status"])


def expire_stale_registrations(batch_size: int | None = None) -> int:
    """Mark pending registrations past their deadline EXPIRED, in batches.

    Rows are claimed under `FOR UPDATE SKIP LOCKED` (PostgreSQL) and the update
    re-checks the status, so two workers never expire one request twice.
    """
    batch_size = batch_size or settings.EXPIRY_BATCH_SIZE
    total = 0
    while True:
        now = timezone.now()
        with transaction.atomic():
            rows = list(
                Registration.objects.select_for_update(skip_locked=True)
                .filter(status__in=Registration.PENDING, expires_at__lte=now)
                .order_by("expires_at")
                .values_list("pk", "connector_id", "vendor_device_id", "rid")[:batch_size]
            )
            if not rows:
                return total
            claimed = Registration.objects.filter(
                pk__in=[row[0] for row in rows], status__in=Registration.PENDING
            ).update(status=Registration.EXPIRED)
            Event.objects.bulk_create(
                Event(
                    connector_id=connector_id,
                    identity=identity,
                    kind=Event.EXPIRE,
                    reason=f"registration {rid} expired before it was completed",
                )
                for _, connector_id, identity, rid in rows
            )
        total += claimed
        if len(rows) < batch_size:
            return total


def purge_ended_registrations(batch_size: int = 10_000) -> int:
    """Delete requests that ended longer ago than EVENT_RETENTION_DAYS (0 keeps them);
    the event log told their story, and keeps it as long as it keeps events."""
    days = settings.EVENT_RETENTION_DAYS
    if not days:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    ended = Registration.objects.exclude(status__in=Registration.PENDING).filter(
        created_at__lt=cutoff
    )
    return delete_in_batches(ended, batch_size)


def delete_in_batches(queryset, batch_size: int) -> int:
    """Short transactions, so devices registering meanwhile never wait long."""
    count = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return count
        count += queryset.model.objects.filter(pk__in=ids).delete()[0]


def purge_old_messages(batch_size: int = 10_000) -> int:
    """Delete messages older than DATA_RETENTION_DAYS (0 keeps them), like data points."""
    days = settings.DATA_RETENTION_DAYS
    if not days:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    return delete_in_batches(Message.objects.filter(created_at__lt=cutoff), batch_size)
