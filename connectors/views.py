"""Portal pages for connectors: list, create, settings with the live identity tester, resources.

Every page is for device makers (`maker_required`: 403 for plain users) and looks
the connector up through `connectors_for`, so another maker's connector is a 404,
exactly like a missing one.
"""

import re

from django.contrib import messages
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import maker_required
from audit.events import Actor
from connectors import identity, services
from connectors.forms import (
    ConnectorForm,
    FirstAliasForm,
    IdentityCheckForm,
    ResourceForm,
    describe_window,
)
from connectors.models import CONNECTOR_ID_PATTERN, Connector, Resource
from connectors.permissions import connectors_for, visible_connector
from core.net import client_ip

CONNECTOR_ID = re.compile(CONNECTOR_ID_PATTERN)
EXAMPLE_BODIES = {
    identity.BASE10: "0000000000000001",
    identity.HEX: "00000000000000a1",
    identity.OPAQUE: "device-0001",
}
EXAMPLE_MACS = {
    identity.MAC_COLON: "00:14:22:01:23:45",
    identity.MAC_DASH: "00-14-22-01-23-45",
    identity.MAC_PLAIN: "001422012345",
}
EXAMPLE_UUID = "651b3b4d-5bf3-446d-9fd0-bacdc7bfbfff"


def audit(request) -> dict:
    """Who and from where, for the log line an admin's action leaves."""
    return {"actor": Actor.of(request, "portal"), "ip": client_ip(request)}


def get_connector(request, connector_id: str) -> Connector:
    """The connector named in the URL if the user may manage it; otherwise 404."""
    return visible_connector(request.user, connector_id)


def example_identity(fmt: identity.IdentityFormat) -> str:
    """An identity that matches `fmt`, for examples and placeholders."""
    if fmt.type == identity.MAC:
        body = EXAMPLE_MACS.get(fmt.mac_style, EXAMPLE_MACS[identity.MAC_COLON])
    elif fmt.type == identity.UUID4:
        body = EXAMPLE_UUID
    else:
        body = EXAMPLE_BODIES[fmt.type]
        if fmt.length:
            filler = "0" if fmt.type != identity.OPAQUE else "x"
            body = (filler * fmt.length + body)[-fmt.length :]
    candidate = fmt.prefix + body
    try:
        return identity.normalize_identity(candidate, fmt)
    except identity.InvalidIdentity:
        return "<identity>"


def device_endpoints(request, connector: Connector) -> dict:
    """Where devices reach this connector: its own host, and the path form on this server."""
    host = request.get_host()
    port = ""
    if not host.endswith("]") and ":" in host:
        port = ":" + host.rsplit(":", 1)[1]
    scheme = request.scheme
    return {
        "device_base": f"{scheme}://{connector.device_host}{port}",
        "path_base": f"{scheme}://{host}/c/{connector.pk}",
    }


def curl_examples(request, connector: Connector) -> list[dict]:
    """Copy-paste activate and write calls for this connector's auth mode."""
    base = device_endpoints(request, connector)["device_base"]
    example = example_identity(connector.identity_format)
    # A defined alias, so the example's value is kept; an undefined one is only logged.
    alias = connector.resources.values_list("alias", flat=True).first()
    undefined = "" if alias else " The value is logged, not kept, until you define an alias."
    alias = alias or "myalias"
    form_type = "-H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8'"
    if connector.auth_mode == Connector.CERTIFICATE:
        return [
            {
                "title": "Make a client certificate whose CN is the identity",
                "code": (
                    "openssl req -x509 -nodes -days 365 -sha256 "
                    f"-subj '/CN={example}' -newkey rsa:2048 \\\n"
                    "  -keyout device-key.pem -out device-cert.pem"
                ),
            },
            {
                "title": "Provision and write in one call (the first write provisions)",
                "code": (
                    f"curl -i -X POST '{base}/api:v1/stack/alias' \\\n"
                    "  --cert device-cert.pem --key device-key.pem \\\n"
                    f"  {form_type} \\\n  -d '{alias}=55'"
                ),
            },
        ]
    if connector.auth_mode == Connector.PASSWORD:
        activate_body = f"id={example}&password=<password of at least 20 bytes>"
        auth = "Authorization: Basic <base64 of identity:password>"
        answer = "Answers 204 No Content."
    else:
        activate_body = f"id={example}"
        auth = "Authorization: Token <device-token>"
        answer = "Answers 200 with the 40-character device token in the body."
    return [
        {
            "title": "Activate (provision) a whitelisted device",
            "note": answer,
            "code": (
                f"curl -i -X POST '{base}/provision/activate' \\\n"
                f"  {form_type} \\\n  -d '{activate_body}'"
            ),
        },
        {
            "title": "Write a value",
            "note": "Answers 204 No Content." + undefined,
            "code": (
                f"curl -i -X POST '{base}/api:v1/stack/alias' \\\n"
                f"  -H '{auth}' \\\n  {form_type} \\\n  -d '{alias}=50'"
            ),
        },
    ]


def connector_context(request, connector: Connector, tab: str) -> dict:
    """What every tab of a connector page needs for its header."""
    return {
        "connector": connector,
        "tab": tab,
        "endpoints": device_endpoints(request, connector),
        "window_text": describe_window(connector.activation_window_seconds),
    }


@maker_required
@require_GET
def connector_list(request):
    connectors = connectors_for(request.user).select_related("owner")
    return render(request, "connectors/list.html", {"connectors": connectors})


@maker_required
@require_http_methods(["GET", "POST"])
def connector_create(request):
    connector = Connector(owner=request.user)
    form = ConnectorForm(request.POST or None, instance=connector)
    alias_form = FirstAliasForm(request.POST or None, prefix="first")
    if request.method == "POST" and all([form.is_valid(), alias_form.is_valid()]):
        with transaction.atomic():
            connector = form.save()
            services.log_connector_created(connector, **audit(request))
            resource = alias_form.save(connector)
            if resource is not None:
                services.log_resource_defined(resource, **audit(request))
        messages.success(request, f"Connector “{connector.name}” created.")
        return redirect("connectors:settings", connector_id=connector.pk)
    return render(request, "connectors/create.html", {"form": form, "alias_form": alias_form})


@maker_required
@require_GET
def connector_detail(request, connector_id):
    connector = get_connector(request, connector_id)
    return redirect("devices:overview", connector_id=connector.pk)


@maker_required
@require_http_methods(["GET", "POST"])
def connector_settings(request, connector_id):
    connector = get_connector(request, connector_id)
    before = services.settings_of(connector)
    form = ConnectorForm(request.POST or None, instance=connector)
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                form.save()
                services.log_connector_changed(connector, before, **audit(request))
            messages.success(request, "Settings saved.")
            return redirect("connectors:settings", connector_id=connector.pk)
        # The header and examples keep showing what is saved, not the rejected input.
        connector.refresh_from_db()
    context = connector_context(request, connector, "settings")
    context.update(
        form=form,
        examples=curl_examples(request, connector),
        example_identity=example_identity(connector.identity_format),
    )
    return render(request, "connectors/settings.html", context)


@maker_required
@require_http_methods(["GET", "POST"])
def connector_delete(request, connector_id):
    """Confirm (GET) and then delete (POST) a connector; its log stays for the audit."""
    connector = get_connector(request, connector_id)
    if request.method == "POST":
        services.delete_connector(connector, **audit(request))
        messages.success(request, f"Connector “{connector.name}” deleted.")
        return redirect("connectors:list")
    context = connector_context(request, connector, "settings")
    context["device_count"] = connector.devices.count()
    return render(request, "connectors/delete.html", context)


@maker_required
@require_GET
def identity_check(request, connector_id=None):
    """Does `id` match the format? The format is the saved one unless the query gives one.

    Without a connector (the "New connector" page) the query must give the format.
    """
    connector = get_connector(request, connector_id) if connector_id is not None else None
    form = IdentityCheckForm(request.GET)
    if not form.is_valid():
        problems = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
        return JsonResponse({"ok": False, "message": f"Bad query: {problems}"}, status=400)
    data = form.cleaned_data
    if connector is None and not data["type"]:
        return JsonResponse({"ok": False, "message": "Bad query: type is required."}, status=400)
    fmt = connector.identity_format if connector is not None else None
    if data["type"]:
        fmt = identity.IdentityFormat(
            type=data["type"],
            prefix=data["prefix"],
            mac_style=data["mac_style"] or identity.MAC_COLON,
            length=data["length"] if data["type"] not in (identity.MAC, identity.UUID4) else None,
        )
        try:
            fmt.validate_definition()
        except identity.InvalidIdentity as exc:
            return JsonResponse({"ok": False, "message": f"The format itself is invalid: {exc}."})
    answer = {"format": fmt.describe(), "example": example_identity(fmt)}
    try:
        stored = identity.normalize_identity(data["id"], fmt)
    except identity.InvalidIdentity as exc:
        return JsonResponse({**answer, "ok": False, "message": f"No: {exc}."})
    note = f" (stored as {stored})" if stored != data["id"] else ""
    return JsonResponse({**answer, "ok": True, "identity": stored, "message": f"Matches{note}."})


@maker_required
@require_http_methods(["GET", "POST"])
def resource_list(request, connector_id):
    connector = get_connector(request, connector_id)
    form = ResourceForm(request.POST or None, connector=connector)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            resource = form.save()
            services.log_resource_defined(resource, **audit(request))
        messages.success(request, f"Alias “{resource.alias}” defined.")
        return redirect("connectors:resources", connector_id=connector.pk)
    context = connector_context(request, connector, "resources")
    context.update(form=form, resources=connector.resources.all())
    return render(request, "connectors/resources.html", context)


@maker_required
@require_POST
def resource_delete(request, connector_id, resource_id):
    connector = get_connector(request, connector_id)
    resource = get_object_or_404(Resource, connector=connector, pk=resource_id)
    services.delete_resource(resource, **audit(request))
    messages.success(request, f"Alias “{resource.alias}” removed; its stored data points stay.")
    return redirect("connectors:resources", connector_id=connector.pk)
