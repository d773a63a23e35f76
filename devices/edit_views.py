"""Portal pages that change one thing a maker owns: a device's name and tags.

(Cancelling a CSV import, and restarting one with its good rows, are in
devices.import_views with the other import pages.)

Like devices.views, every page is for device makers and every lookup goes
through `connectors_for`, so another maker's connector is a 404.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.permissions import maker_required
from connectors.views import connector_context, get_connector
from core.net import client_ip
from devices import services
from devices.forms import DeviceEditForm
from devices.views import actor, edit_initial, get_device, status_view


@maker_required
@require_http_methods(["GET", "POST"])
def device_edit(request, connector_id, device_id):
    """The device's name and tags; bad input is shown next to its field and changes nothing."""
    connector = get_connector(request, connector_id)
    device = get_device(connector, device_id)
    if request.method == "POST":
        form = DeviceEditForm(request.POST)
        if form.is_valid():
            changed = services.edit_device(
                device,
                name=form.cleaned_data["name"],
                tags=form.cleaned_data["tags"],
                actor=actor(request),
                ip=client_ip(request),
            )
            if changed:
                messages.success(request, f"{device.identity}: name and tags saved.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect("devices:detail", connector_id=connector.pk, device_id=device.pk)
    else:
        form = DeviceEditForm(initial=edit_initial(device))
    context = connector_context(request, connector, "devices")
    context.update(device=device, status=status_view(device.status), edit_form=form)
    return render(request, "devices/edit.html", context, status=400 if form.is_bound else 200)
