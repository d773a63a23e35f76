from celery import shared_task

from devices import imports, services


@shared_task
def expire_whitelist() -> int:
    """Periodic: mark whitelist entries past their activation window expired."""
    return services.expire_stale_whitelist()


@shared_task
def purge_old_records() -> dict[str, int]:
    """Daily: drop events and data points past their retention."""
    return services.purge_old_records()


@shared_task
def fail_stalled_imports() -> dict[str, int]:
    """Every 5 minutes: fail imports whose worker went away, queue lost ones again."""
    return imports.fail_stalled_imports()


@shared_task
def run_whitelist_import(import_id: int) -> None:
    """A CSV whitelist import too large to run during its upload request."""
    imports.run_import(import_id)
