"""Admin views of secure registrations, secure devices and their messages.

All of them are written by `registrations.services` (so every step is logged);
the admin looks, never edits hashes or statuses by hand. Registrations and
secure devices decide how a device authenticates, so they are not deleted one
by one here (they go with their connector or device, or by retention): to cut
a device off, revoke it in the devices admin, which is logged. Messages may be
deleted, each deletion logged with the admin's name.
"""

from django.contrib import admin

from audit.models import Event
from core.net import client_ip
from devices import services as device_services
from devices.admin import LoggedDeleteMixin, NoDirectDeleteMixin, ReadOnlyAdmin
from registrations.models import (
    HubMember,
    HubPolicy,
    Message,
    PairingGuess,
    Registration,
    SecureDevice,
)


@admin.register(Registration)
class RegistrationAdmin(NoDirectDeleteMixin, ReadOnlyAdmin):
    list_display = [
        "rid",
        "connector",
        "vendor_device_id",
        "status",
        "user",
        "failed_attempts",
        "wrong_serial_attempts",
        "expires_at",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["rid", "vendor_device_id", "certificate_serial"]
    list_select_related = ["connector", "user"]
    exclude = ["pin_hash", "nonce_hash"]


@admin.register(PairingGuess)
class PairingGuessAdmin(NoDirectDeleteMixin, ReadOnlyAdmin):
    """Who guessed wrong at which request, and how often: the trail of a lock. Not
    deleted by hand: that would give an account its guesses back."""

    list_display = ["registration", "user", "wrong"]
    search_fields = ["registration__rid", "user__username"]
    list_select_related = ["registration", "user"]


@admin.register(SecureDevice)
class SecureDeviceAdmin(NoDirectDeleteMixin, ReadOnlyAdmin):
    list_display = ["did", "device", "certificate_serial", "hub", "registered_at"]
    search_fields = ["did", "device__identity", "certificate_fingerprint"]
    list_select_related = ["device", "hub"]
    exclude = ["token_hash"]


@admin.register(HubPolicy)
class HubPolicyAdmin(admin.ModelAdmin):
    """Which device types are hubs, and which hub types a device type trusts with its
    end nodes. Each save leaves a `change` line naming the admin and the new policy."""

    list_display = ["connector", "acts_as_hub"]
    list_filter = ["acts_as_hub"]
    search_fields = ["connector__name", "connector__id"]
    list_select_related = ["connector"]
    raw_id_fields = ["connector"]
    filter_horizontal = ["trusted_hub_types"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        policy = form.instance
        trusted = ", ".join(sorted(policy.trusted_hub_types.values_list("pk", flat=True)))
        actor = device_services.Actor.of(request, "admin")
        device_services.record_event(
            policy.connector_id,
            "",
            Event.CHANGE,
            f"hub policy set by {actor}: acts as hub {policy.acts_as_hub}; "
            f"trusts hubs of {trusted or 'no other type'}",
            client_ip(request),
            actor=actor,
        )


@admin.register(HubMember)
class HubMemberAdmin(NoDirectDeleteMixin, ReadOnlyAdmin):
    """Who shares which hub; the hub's owner adds and removes them under My devices."""

    list_display = ["hub", "user", "added_at"]
    search_fields = ["hub__identity", "user__username"]
    list_select_related = ["hub", "user"]


@admin.register(Message)
class MessageAdmin(LoggedDeleteMixin, ReadOnlyAdmin):
    list_display = ["mid", "device", "channel", "created_at"]
    list_filter = ["channel"]
    search_fields = ["mid", "device__identity"]
    list_select_related = ["device"]
