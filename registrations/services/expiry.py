"""Ending what outlived its time: pending registrations past their deadline, and
ended registrations and messages past their retention."""

from datetime import timedelta

from django.conf import settings
from django.db import models
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
    """Mark pending registrations past their deadline EXPIRED, in batches."""
    return device_services.expire_in_batches(
        Registration,
        models.Q(status__in=Registration.PENDING),
        deadline="expires_at",
        expired=Registration.EXPIRED,
        identity="vendor_device_id",
        extra=("rid",),
        reason=lambda row: f"registration {row[3]} expired before it was completed",
        batch_size=batch_size,
    )


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
