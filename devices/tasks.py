"""The devices app's Celery tasks: each takes ids and calls a service."""

from celery import shared_task

from devices import bulk, imports, services


@shared_task
def expire_whitelist() -> int:
    """Periodic: mark whitelist entries past their activation window expired, and end
    the registration of devices given a secret and not seen in time."""
    return services.expire_stale_whitelist() + services.end_unconnected()


@shared_task
def purge_old_records() -> dict[str, int]:
    """Daily: drop events and data points past their retention."""
    return services.purge_old_records()


@shared_task
def fail_stalled_imports() -> dict[str, int]:
    """Every 5 minutes: fail imports no worker moves forward, send lost ones again."""
    return imports.fail_stalled_imports(send=run_whitelist_import.delay)


# Acknowledged when it ends, not when it starts, and handed back to the broker
# if the worker process running it dies: the next run takes the import over.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_whitelist_import(import_id: int) -> None:
    """A CSV whitelist import too large to run during its upload request."""
    imports.run_import(import_id, take_over=True)


# Acknowledged when it ends; a redelivered run carries on after the last batch done.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_bulk_action(job_id: int) -> None:
    """A bulk action on every device a Devices tab filter matched."""
    bulk.run(job_id)
