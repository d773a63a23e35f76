from celery import shared_task

from registrations import services


@shared_task
def expire_registrations() -> int:
    """Periodic: mark pending secure registrations past their deadline EXPIRED."""
    return services.expire_stale_registrations()
