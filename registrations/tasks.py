from celery import shared_task

from registrations import services


@shared_task
def expire_registrations() -> int:
    """Periodic: mark pending secure registrations past their deadline EXPIRED."""
    return services.expire_stale_registrations()


@shared_task
def purge_old_records() -> dict[str, int]:
    """Daily: drop messages and ended registrations past their retention."""
    return {
        "message": services.purge_old_messages(),
        "registration": services.purge_ended_registrations(),
    }
