from celery import shared_task

from devices import services


@shared_task
def expire_whitelist() -> int:
    """Periodic: mark whitelist entries past their activation window expired."""
    return services.expire_stale_whitelist()
