"""Admin views of secure registrations, secure devices and their messages.

All of them are written by `registrations.services` (so every step is logged);
the admin looks and may delete, never edits hashes or statuses by hand.
"""

from django.contrib import admin

from registrations.models import Message, Registration, SecureDevice


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system; the admin may look (and delete)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Registration)
class RegistrationAdmin(ReadOnlyAdmin):
    list_display = [
        "rid",
        "connector",
        "vendor_device_id",
        "status",
        "user",
        "failed_attempts",
        "expires_at",
        "created_at",
    ]
    list_filter = ["status"]
    search_fields = ["rid", "vendor_device_id", "certificate_serial"]
    list_select_related = ["connector", "user"]
    exclude = ["pin_hash", "nonce_hash"]


@admin.register(SecureDevice)
class SecureDeviceAdmin(ReadOnlyAdmin):
    list_display = ["did", "device", "certificate_serial", "registered_at"]
    search_fields = ["did", "device__identity", "certificate_fingerprint"]
    list_select_related = ["device"]
    exclude = ["token_hash"]


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["mid", "device", "channel", "created_at"]
    list_filter = ["channel"]
    search_fields = ["mid", "device__identity"]
    list_select_related = ["device"]
