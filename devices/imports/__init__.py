"""Bulk whitelisting from CSV, and the export in the same format.

`start_import` stores an upload and runs it here when it is small, or hands it
to a worker's task when it is large; `run_import` is what that task calls. The
package reads along the way an import goes:

- `reader`: sniffing an upload before it is stored, then reading its rows;
- `checker`: checking each row (identity, duplicates, tags, pinned certificate);
- `writers` and `postgres`: writing the good rows in one transaction, or nothing;
- `run` and `records`: one run of an import, its progress and its end;
- `sweep`: ending imports no worker moves forward;
- `cancel`: ending an import its maker stops before it writes;
- `restart`: importing the good rows of an import that refused its file;
- `report` and `export`: the error report and the devices as CSV.

Nothing here sends a task: the caller hands in how to (`run_later`, `send`),
so `devices.tasks` imports this package and not the other way round.
"""

from devices.imports.cancel import cancel_import
from devices.imports.export import export_devices_csv
from devices.imports.reader import HEADER, ImportTooLarge, InvalidImportFile
from devices.imports.records import live_phase
from devices.imports.report import error_report_chunks, error_report_name
from devices.imports.restart import (
    CannotRestart,
    UploadGone,
    failed_for_bad_rows,
    import_good_rows,
    restart_of,
    upload_kept,
)
from devices.imports.run import run_import
from devices.imports.start import AlreadyRestarted, start_import
from devices.imports.sweep import fail_stalled_imports

__all__ = [
    "HEADER",
    "AlreadyRestarted",
    "CannotRestart",
    "cancel_import",
    "ImportTooLarge",
    "InvalidImportFile",
    "UploadGone",
    "error_report_chunks",
    "error_report_name",
    "export_devices_csv",
    "fail_stalled_imports",
    "failed_for_bad_rows",
    "import_good_rows",
    "live_phase",
    "restart_of",
    "run_import",
    "start_import",
    "upload_kept",
]
