"""Portal pages for users: pair a device by PIN, and "My devices".

Views parse input, call one service and render; a device that is not the
signed-in user's own is a 404.
"""

import hashlib
import re
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from core.net import client_ip
from devices.models import Device
from registrations import services
from registrations.forms import DeviceNameForm, PairingForm, ShareForm

# Where the registration a user matched by PIN waits for their confirmation.
SESSION_KEY = "pairing_rid"
OWNER_MESSAGES = 50
# The list's version, as My devices shows it and sends it back when it polls.
VERSION_LENGTH = 16
VERSION = re.compile(rf"(?:[0-9a-f]{{{VERSION_LENGTH}}})?")


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@login_required
@require_http_methods(["GET", "POST"])
def pair(request):
    form = PairingForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            registration = services.find_pairing(
                request.user,
                data["pin"],
                data["serial_suffix"],
                client_ip(request),
            )
        except services.RateLimited as exc:
            form.add_error(
                None,
                "Too many wrong guesses. For your safety pairing is paused; try again in "
                f"{_minutes(exc.retry_after)}.",
            )
            status = 429
        except services.RegistrationError as exc:
            form.add_error(None, exc.message)
        else:
            request.session[SESSION_KEY] = registration.rid
            return redirect("registrations:pair-confirm")
    return render(request, "registrations/pair.html", {"form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def pair_confirm(request):
    rid = request.session.get(SESSION_KEY)
    if not rid:
        messages.warning(request, "Type the PIN and serial digits first.")
        return redirect("registrations:pair")
    try:
        registration = services.pairing_to_confirm(rid)
    except services.RegistrationError as exc:
        request.session.pop(SESSION_KEY, None)
        messages.error(request, exc.message)
        return redirect("registrations:pair")
    form = DeviceNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.confirm_pairing(
                request.user, registration.rid, form.cleaned_data["name"], client_ip(request)
            )
        except services.RegistrationError as exc:
            request.session.pop(SESSION_KEY, None)
            messages.error(request, exc.message)
            return redirect("registrations:pair")
        request.session.pop(SESSION_KEY, None)
        messages.success(
            request,
            f"Paired. {form.cleaned_data['name']} appears under your devices as soon as the "
            "device finishes its registration.",
        )
        return redirect("registrations:my-devices")
    return render(
        request,
        "registrations/pair_confirm.html",
        {"form": form, "registration": registration, "connector": registration.connector},
    )


@never_cache
@login_required
@require_GET
def pair_status(request):
    """The confirm page's poll: where the request in the user's session stands, so the
    page can say it expired, was cancelled or was taken while the user looked at it.
    Only the session's request: there is nothing to name another one with."""
    try:
        progress = services.pairing_progress(request.user, request.session.get(SESSION_KEY))
    except services.RegistrationError as exc:
        return JsonResponse({"state": "gone", "message": exc.message}, status=404)
    return JsonResponse({"state": progress.state, "message": progress.message})


def _my_listing(user) -> dict:
    """What My devices lists: the user's devices (end nodes under their hub), hubs shared
    with them, and the registrations they confirmed that wait for their device."""
    devices = list(services.owned_devices(user))
    # End nodes are listed under their hub: the user's own, or one shared with them.
    nodes_by_hub = defaultdict(list)
    listed = []
    for device in devices:
        hub_id = getattr(getattr(device, "secure", None), "hub_id", None)
        (nodes_by_hub[hub_id] if hub_id else listed).append(device)
    for device in listed:
        device.nodes_behind = nodes_by_hub.pop(device.pk, [])
    shared = list(services.hubs_shared_with(user))
    for hub in shared:
        hub.nodes_behind = nodes_by_hub.pop(hub.pk, [])
    listed += [node for nodes in nodes_by_hub.values() for node in nodes]
    waiting = list(services.awaiting_completion(user).order_by("confirmed_at", "pk"))
    return {
        "all_devices": devices,
        "devices": listed,
        "shared_hubs": shared,
        "waiting": waiting,
        "version": _listing_version(devices, shared, waiting),
    }


def _listing_version(devices, shared, waiting) -> str:
    """A short digest of what the list shows, so a poll redraws it only when it changed."""
    shown = (
        [("device", device.pk, device.status, device.name) for device in devices]
        + [("shared", hub.pk) for hub in shared]
        + [("waiting", registration.pk) for registration in waiting]
    )
    return hashlib.sha256(repr(sorted(shown, key=str)).encode()).hexdigest()[:VERSION_LENGTH]


def _with_latest_messages(listing: dict) -> dict:
    for device in listing["all_devices"]:
        device.latest_message = services.messages_for_owner(device).first()
    return listing


@login_required
def my_devices(request):
    listing = _with_latest_messages(_my_listing(request.user))
    return render(request, "registrations/my_devices.html", listing)


@never_cache
@login_required
@require_GET
def my_devices_feed(request):
    """My devices, polled while a device the user paired has yet to finish: the user's
    own waiting and lately ended requests, and the list redrawn when it changed since
    the version the page shows (`seen`)."""
    seen = request.GET.get("seen", "")
    if not VERSION.fullmatch(seen):
        return JsonResponse({"error": "seen: the version the page shows"}, status=400)
    listing = _my_listing(request.user)
    answer = {
        "version": listing["version"],
        "waiting": [
            {"id": registration.pk, "name": registration.device_name}
            for registration in listing["waiting"]
        ],
        "ended": services.ended_pairings(request.user),
    }
    if seen != listing["version"]:
        answer["html"] = render_to_string(
            "registrations/_my_devices_list.html", _with_latest_messages(listing), request
        )
    return JsonResponse(answer)


def _own_device(request, device_id) -> Device:
    return get_object_or_404(
        Device.objects.select_related("connector", "secure"), pk=device_id, owner=request.user
    )


@login_required
@require_http_methods(["GET", "POST"])
def my_device(request, device_id):
    device = _own_device(request, device_id)
    form = DeviceNameForm(request.POST or None, initial={"name": device.name})
    if request.method == "POST" and form.is_valid():
        services.rename_device(request.user, device, form.cleaned_data["name"], client_ip(request))
        messages.success(request, f"Renamed to {device.name}.")
        return redirect("registrations:my-device", device_id=device.pk)
    return render(
        request,
        "registrations/my_device.html",
        {
            "device": device,
            "form": form,
            "device_messages": list(services.messages_for_owner(device)[:OWNER_MESSAGES]),
            "is_hub": services.is_hub(device),
            "members": services.members_of(device),
            "share_form": ShareForm(),
        },
    )


@login_required
@require_http_methods(["POST"])
def sharing(request, device_id):
    """The owner of a hub shares it with another account (`username`) or stops (`remove`)."""
    device = _own_device(request, device_id)
    ip = client_ip(request)
    if "remove" in request.POST:
        try:
            user_id = int(request.POST["remove"])
        except ValueError:
            messages.error(request, "Choose whom to stop sharing with.")
        else:
            services.unshare_hub(request.user, device, user_id, ip)
            messages.success(request, "No longer shared with that account.")
        return redirect("registrations:my-device", device_id=device.pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the username of the account to share with.")
        return redirect("registrations:my-device", device_id=device.pk)
    try:
        member = services.share_hub(request.user, device, form.cleaned_data["username"], ip)
    except services.RegistrationError as exc:
        messages.error(request, f"{exc.message[:1].upper()}{exc.message[1:]}.")
    else:
        messages.success(request, f"Shared with {member.user.get_username()}.")
    return redirect("registrations:my-device", device_id=device.pk)


@login_required
@require_http_methods(["GET", "POST"])
def release(request, device_id):
    device = _own_device(request, device_id)
    if request.method == "POST":
        services.release_device(request.user, device, client_ip(request))
        messages.success(request, f"{device.name or device.identity} is no longer yours.")
        return redirect("registrations:my-devices")
    return render(request, "registrations/release.html", {"device": device})
