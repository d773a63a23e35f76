"""Portal pages inside one connector: the device page and the live Logs tab.

The Devices tab itself, with its sorts, counts and bulk actions, is in
devices.list_views; CSV imports are in devices.import_views.

Views parse input, call one service from `devices.services` (or the import
engine) and render. Every page is for device makers (`maker_required`) and every
lookup goes through `connectors_for`, so another maker's connector and everything
in it is a 404.
"""

from django.contrib import messages
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import maker_required
from audit.models import Event
from connectors.views import connector_context, get_connector
from core.net import client_ip
from devices import charts, services
from devices.forms import (
    DeviceEditForm,
    EventFilterForm,
    WhitelistForm,
    tags_as_text,
)
from devices.models import DataPoint, Device, identity_names

LOG_PAGE_SIZE = 100
LIVE_BATCH_SIZE = 200
CHART_POINTS = 200
DEVICE_EVENTS = 20

# What each admin action on a device is called, says and does.
ACTIONS = {
    "reset": {
        "service": services.reset_device,
        "button": "Reset",
        "danger": False,
    },
    "revoke": {
        "service": services.revoke_device,
        "button": "Revoke",
        "danger": True,
    },
    # Provision now with a secret shown once (devices.services.issued).
    "secret": {
        "service": services.issue_secret,
        "button": "Give it a secret",
        "danger": False,
    },
}


def actor(request) -> services.Actor:
    """Who events name for an admin's action in the portal."""
    return services.Actor.of(request, "portal")


def event_time(event: Event) -> str:
    return timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S")


def status_view(status: str) -> dict:
    return {"status": status, "label": dict(Device.STATUSES).get(status, status)}


# --- Devices tab ----------------------------------------------------------------


def _with(query, **cursor) -> str:
    query = query.copy()
    for key, value in cursor.items():
        query[key] = str(value)
    return query.urlencode()


@maker_required
@require_http_methods(["GET", "POST"])
def device_add(request, connector_id):
    connector = get_connector(request, connector_id)
    form = WhitelistForm(request.POST or None, connector=connector)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            # One transaction: a certificate that cannot be pinned leaves no entry behind.
            with transaction.atomic():
                device = services.whitelist_device(
                    connector,
                    data["identity"],
                    tags=data["tags"],
                    name=data["name"],
                    window_seconds=data["window_seconds"],
                    ip=client_ip(request),
                    actor=actor(request),
                )
                if data["certificate"].strip():
                    services.pin_certificate(device, data["certificate"])
        except services.AlreadyWhitelisted:
            form.add_error("identity", "This identity is already whitelisted on this connector.")
        except services.CertificateNotPinnable as exc:
            form.add_error("certificate", f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
        except services.DeviceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"{device.identity} whitelisted.")
            return redirect("devices:detail", connector_id=connector.pk, device_id=device.pk)
    context = connector_context(request, connector, "devices")
    context["form"] = form
    return render(request, "devices/add.html", context)


# --- device page ----------------------------------------------------------------


def get_device(connector, device_id) -> Device:
    return get_object_or_404(
        Device.objects.select_related("owner"), connector=connector, pk=device_id
    )


def device_data(device: Device) -> tuple[list, list]:
    """Charts for numeric aliases and latest-value rows for the others, per defined alias."""
    number_charts, other_values = [], []
    for resource in device.connector.resources.all():
        recent = list(
            DataPoint.objects.filter(device=device, alias=resource.alias)
            .order_by("-created_at", "-id")
            .values_list("created_at", "value")[:CHART_POINTS]
        )
        if not recent:
            continue
        recent.reverse()
        chart = (
            charts.line_chart(resource.alias, recent)
            if resource.format in ("number", "string")
            else None
        )
        if chart is not None:
            number_charts.append(chart)
        else:
            at, value = recent[-1]
            other_values.append(
                {"alias": resource.alias, "value": value, "at": at, "count": len(recent)}
            )
    return number_charts, other_values


@maker_required
@require_GET
def device_detail(request, connector_id, device_id):
    connector = get_connector(request, connector_id)
    device = get_device(connector, device_id)
    number_charts, other_values = device_data(device)
    events = Event.objects.filter(connector=connector, identity=device.identity).order_by("-id")[
        :DEVICE_EVENTS
    ]
    context = connector_context(request, connector, "devices")
    context.update(
        device=device,
        status=status_view(device.status),
        credentials=device.credentials.order_by("-id")[:20],
        events=[{"event": event, "time": event_time(event)} for event in events],
        charts=number_charts,
        other_values=other_values,
        edit_form=DeviceEditForm(initial=edit_initial(device)),
        reset_label=reset_label(device),
        now=timezone.now(),
    )
    return render(request, "devices/detail.html", context)


def edit_initial(device: Device) -> dict:
    return {"name": device.name, "tags": tags_as_text(device.tags)}


def reset_label(device: Device) -> str:
    if device.status in (Device.EXPIRED, Device.REVOKED):
        return "Re-enable"
    if device.status == Device.WHITELISTED:
        return "Renew activation window"
    return "Reset credentials"


@maker_required
@require_http_methods(["GET", "POST"])
def device_action(request, connector_id, device_id, action):
    """Confirm (GET) and then perform (POST) a reset or a revocation."""
    connector = get_connector(request, connector_id)
    device = get_device(connector, device_id)
    if action not in ACTIONS:
        raise Http404("No such action.")
    if action == "revoke" and device.status == Device.REVOKED:
        messages.info(request, "This device is already revoked.")
        return redirect("devices:detail", connector_id=connector.pk, device_id=device.pk)
    if request.method == "POST":
        try:
            done = ACTIONS[action]["service"](device, actor=actor(request), ip=client_ip(request))
        except services.DeviceError as exc:
            messages.error(request, exc.message)
        else:
            if action == "secret":
                return secret_issued(request, connector, device, *done)
            done = "revoked" if action == "revoke" else "back to whitelisted with a fresh window"
            messages.success(request, f"{device.identity} is {done}.")
        return redirect("devices:detail", connector_id=connector.pk, device_id=device.pk)
    context = connector_context(request, connector, "devices")
    context.update(
        device=device,
        status=status_view(device.status),
        action=action,
        button=reset_label(device) if action == "reset" else ACTIONS[action]["button"],
        danger=ACTIONS[action]["danger"],
    )
    return render(request, "devices/confirm.html", context)


def secret_issued(request, connector, device, secret, connect_by):
    """The one page that shows a secret Gatehouse gave a device; never stored by the browser."""
    context = connector_context(request, connector, "devices")
    context.update(
        device=device, secret=secret, connect_by=connect_by, auth_mode=connector.auth_mode
    )
    response = render(request, "devices/secret.html", context)
    response["Cache-Control"] = "no-store"
    return response


# --- Logs tab ---------------------------------------------------------------------


def filtered_events(connector, filters: dict):
    events = Event.objects.filter(connector=connector)
    if filters.get("kind"):
        events = events.filter(kind=filters["kind"])
    if filters.get("identity"):
        events = events.filter(identity__in=identity_names(connector, filters["identity"].strip()))
    return events


def event_row(event: Event) -> dict:
    return {
        "id": event.pk,
        "time": event_time(event),
        "timestamp": event.created_at.isoformat(),
        "kind": event.kind,
        "kind_label": event.get_kind_display(),
        "identity": event.identity,
        "reason": event.reason,
        "actor": event.actor_name,
        "source_ip": event.source_ip or "",
    }


@maker_required
@require_GET
def logs(request, connector_id):
    connector = get_connector(request, connector_id)
    form = EventFilterForm(request.GET)
    events, has_older = [], False
    newest_id = Event.objects.newest_of(connector.pk).values_list("id", flat=True).first() or 0
    if form.is_valid():
        matching = filtered_events(connector, form.cleaned_data)
        before = form.cleaned_data["before"]
        if before:
            matching = matching.filter(id__lt=before)
        if before or form.cleaned_data.get("kind") or form.cleaned_data.get("identity"):
            newest = matching.order_by("-id")
        else:
            newest = Event.objects.newest_of(connector.pk)
        events = list(newest[: LOG_PAGE_SIZE + 1])
        has_older = len(events) > LOG_PAGE_SIZE
        events = events[:LOG_PAGE_SIZE]
    older_query = ""
    if has_older:
        query = request.GET.copy()
        query.pop("after", None)
        older_query = _with(query, before=events[-1].pk)
    context = connector_context(request, connector, "logs")
    context.update(
        form=form,
        events=[event_row(event) for event in events],
        live=form.is_valid() and not form.cleaned_data["before"],
        newest_id=newest_id,
        feed_url=reverse("devices:log-feed", kwargs={"connector_id": connector.pk}),
        older_query=older_query,
    )
    return render(request, "devices/logs.html", context)


@maker_required
@require_GET
def log_feed(request, connector_id):
    """Events newer than `after`, oldest first, for the live Logs tab to prepend."""
    connector = get_connector(request, connector_id)
    form = EventFilterForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": form.errors.get_json_data()}, status=400)
    after = form.cleaned_data["after"] or 0
    # Read the ceiling first: events beyond it are left for the next poll, so a
    # filter that matches nothing still moves the cursor without rescanning.
    ceiling = Event.objects.newest_of(connector.pk).values_list("id", flat=True).first() or 0
    events = list(
        filtered_events(connector, form.cleaned_data)
        .filter(id__gt=after, id__lte=ceiling)
        .order_by("id")[:LIVE_BATCH_SIZE]
    )
    last_id = events[-1].pk if len(events) == LIVE_BATCH_SIZE else max(after, ceiling)
    return JsonResponse({"events": [event_row(event) for event in events], "last_id": last_id})
