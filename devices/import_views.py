"""Portal pages for CSV imports: the upload, an import's page and its progress,
cancelling it, and importing the good rows of one that refused its file.

Like devices.views, every page is for device makers (`maker_required`) and every
lookup goes through `connectors_for`, so another maker's connector and
everything in it is a 404. An import's page says which step the run is in
(checking rows, adding devices, saving the result), how fast it goes and
about how long is left.
"""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import maker_required
from connectors.views import connector_context, get_connector
from core.net import client_ip
from devices import imports, services, tasks
from devices.forms import ImportForm
from devices.models import WhitelistImport
from devices.views import actor

IMPORT_ERRORS_SHOWN = 500
# A rate needs this long a look to mean anything.
RATE_AFTER_SECONDS = 1.0
PHASE_LABELS = dict(WhitelistImport.PHASES)


def api_url(tail: str, connector) -> str:
    return f"/api/v1/connectors/{connector.pk}/{tail}"


def get_import(connector, import_id) -> WhitelistImport:
    return get_object_or_404(WhitelistImport, connector=connector, pk=import_id)


def _message(exc: services.InvalidData) -> str:
    text = exc.message.rstrip(".")
    return f"{text[:1].upper()}{text[1:]}."


# --- Upload ---------------------------------------------------------------------------


@maker_required
@require_http_methods(["GET", "POST"])
def import_new(request, connector_id):
    connector = get_connector(request, connector_id)
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = imports.start_import(
                connector,
                data["file"],
                dry_run=data["dry_run"],
                on_error=data["on_error"],
                actor=actor(request),
                ip=client_ip(request),
                run_later=tasks.run_whitelist_import.delay,
            )
        except services.InvalidData as exc:
            form.add_error("file", _message(exc))
        else:
            return redirect("devices:import", connector_id=connector.pk, import_id=run.pk)
    context = connector_context(request, connector, "import")
    context.update(
        form=form,
        recent_imports=connector.imports.order_by("-id")[:10],
        export_url=api_url("devices.csv", connector),
    )
    return render(request, "devices/import_new.html", context)


# --- An import's page and its progress ------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _steps(run: WhitelistImport) -> list[str]:
    """The steps this import goes through: a dry run only checks."""
    if run.dry_run:
        return [WhitelistImport.CHECKING]
    return [WhitelistImport.CHECKING, WhitelistImport.WRITING, WhitelistImport.FINISHING]


def _step_states(run: WhitelistImport, steps: list[str], current: str) -> list[dict]:
    """Each step with its label and state: done, current, todo, stopped or skipped."""
    reached = steps.index(current) if current in steps else -1
    ended = run.status in WhitelistImport.ENDED
    states = []
    for index, step in enumerate(steps):
        if run.status == WhitelistImport.DONE or index < reached:
            state = "done"
        elif index > reached:
            state = "skipped" if ended else "todo"
        else:
            state = "stopped" if ended else "current"
        states.append({"key": step, "label": PHASE_LABELS[step], "state": state})
    return states


def phase_state(run: WhitelistImport) -> dict:
    """The step a run is in, for its page: label, bar, rows per second, time left.

    Checking counts rows read; adding devices counts devices written; saving
    the result has no count, so its bar moves without an end.
    """
    steps = _steps(run)
    live = imports.live_phase(run)
    phase = live["phase"]
    if run.status == WhitelistImport.RUNNING and phase == WhitelistImport.WAITING:
        phase = WhitelistImport.CHECKING  # claimed, its first update not seen yet
    state = {
        "phase": phase,
        "phase_label": PHASE_LABELS.get(phase, ""),
        "phases": _step_states(run, steps, phase),
        "phase_done": run.phase_done,
        "rate": None,
        "eta_seconds": None,
    }
    if run.status in WhitelistImport.ENDED:
        return {**state, "phase_text": "", "bar_max": max(run.total, 1), "bar_value": run.processed}
    if run.status == WhitelistImport.PENDING:
        text = "Waiting for a worker to start it."
        return {**state, "phase_text": text, "bar_max": 1, "bar_value": None}
    if phase == WhitelistImport.CHECKING:
        done, total, started = run.processed, run.total, run.phase_started_at
    else:
        done, total, started = live["done"], live["total"], live["started_at"]
    state["phase_done"] = done
    step = f"Step {steps.index(phase) + 1} of {len(steps)}: {PHASE_LABELS[phase]}"
    elapsed = (timezone.now() - started).total_seconds() if started else 0.0
    if phase == WhitelistImport.FINISHING:
        text = (
            f"{step}: making the {done:,} new devices visible and logging the import "
            f"({_duration(elapsed)} so far)."
        )
        return {**state, "phase_text": text, "bar_max": 1, "bar_value": None}
    unit = "rows" if phase == WhitelistImport.CHECKING else "devices"
    if not total:
        text = f"{step}: {done:,} {unit} so far" if done else f"{step}: counting the rows…"
        return {**state, "phase_text": text, "bar_max": 1, "bar_value": None}
    parts = [f"{step}: {min(done, total):,} of {total:,} {unit}"]
    if elapsed >= RATE_AFTER_SECONDS and done:
        state["rate"] = rate = done / elapsed
        parts.append(f"{rate:,.0f} {unit}/s")
        if total > done:
            state["eta_seconds"] = eta = (total - done) / rate
            parts.append(f"about {_duration(eta)} left")
    text = " · ".join(parts) + "."
    return {**state, "phase_text": text, "bar_max": total, "bar_value": min(done, total)}


def import_state(run: WhitelistImport, errors_shown: int = IMPORT_ERRORS_SHOWN) -> dict:
    """What an import's page shows, and what its progress endpoint answers."""
    finished = run.status in WhitelistImport.ENDED
    phase = phase_state(run)
    created = run.created
    if not finished and phase["phase"] in (WhitelistImport.WRITING, WhitelistImport.FINISHING):
        # Added in the writing transaction: they all appear when it commits.
        created = phase["phase_done"]
    return {
        "id": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "finished": finished,
        "cancellable": not finished,
        "dry_run": run.dry_run,
        "on_error": run.on_error,
        "file_name": run.original_name,
        "total": run.total,
        "processed": run.processed,
        "created": created,
        "error_count": run.error_count,
        "good": max(0, run.processed - run.error_count),
        "errors": run.errors[:errors_shown] if finished else [],
        **phase,
    }


@maker_required
@require_GET
def import_detail(request, connector_id, import_id):
    connector = get_connector(request, connector_id)
    run = get_import(connector, import_id)
    context = connector_context(request, connector, "import")
    restartable = imports.failed_for_bad_rows(run)
    context.update(
        run=run,
        state=import_state(run),
        restartable=restartable,
        upload_kept=restartable and imports.upload_kept(run),
        restart=imports.restart_of(run) if restartable else None,
        progress_url=reverse(
            "devices:import-progress", kwargs={"connector_id": connector.pk, "import_id": run.pk}
        ),
        errors_url=api_url(f"imports/{run.pk}/errors.csv", connector),
        export_url=api_url("devices.csv", connector),
        errors_shown=IMPORT_ERRORS_SHOWN,
    )
    return render(request, "devices/import_detail.html", context)


@maker_required
@require_GET
def import_progress(request, connector_id, import_id):
    connector = get_connector(request, connector_id)
    return JsonResponse(import_state(get_import(connector, import_id)))


@maker_required
@require_POST
def import_cancel(request, connector_id, import_id):
    """Stop a pending or running import before it writes; an ended one stays as it ended."""
    connector = get_connector(request, connector_id)
    run = get_import(connector, import_id)
    if imports.cancel_import(run, actor=actor(request), ip=client_ip(request)):
        messages.success(request, f"Import {run.pk} cancelled: nothing was written.")
    else:
        messages.error(
            request,
            f"Import {run.pk} had already ended ({run.get_status_display().lower()}): "
            "nothing was cancelled.",
        )
    return redirect("devices:import", connector_id=connector.pk, import_id=run.pk)


@maker_required
@require_POST
def import_good_rows(request, connector_id, import_id):
    """Import again the file of an import that refused it for bad rows, skipping them.

    A second click lands on the import the first one started and starts nothing.
    """
    connector = get_connector(request, connector_id)
    run = get_import(connector, import_id)
    try:
        restart = imports.import_good_rows(
            run,
            actor=actor(request),
            ip=client_ip(request),
            run_later=tasks.run_whitelist_import.delay,
        )
    except imports.AlreadyRestarted as exc:
        messages.info(request, f"{_message(exc)} Nothing new was started.")
        return redirect("devices:import", connector_id=connector.pk, import_id=exc.restart.pk)
    except services.InvalidData as exc:
        messages.error(request, _message(exc))
        return redirect("devices:import", connector_id=connector.pk, import_id=run.pk)
    messages.success(request, f"Import {restart.pk} started with the good rows of import {run.pk}.")
    return redirect("devices:import", connector_id=connector.pk, import_id=restart.pk)
