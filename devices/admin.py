"""Admin views of devices and their records.

Devices are whitelisted through the portal, the API or a CSV import, and
change status only through `devices.services`, so every transition is logged.
Hashes, certificates and events are shown, never edited.
"""

from django import forms
from django.contrib import admin, messages

from devices import services
from devices.models import Credential, DataPoint, Device, Event, IngestMark, WhitelistImport


def _actor(request) -> str:
    return f"{request.user.get_username()} via admin"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system; the admin may look (and delete with their parent)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DeviceForm(forms.ModelForm):
    class Meta:
        model = Device
        fields = ["name", "tags", "owner", "parent"]

    def clean_tags(self):
        try:
            return services.validate_tags(self.cleaned_data["tags"])
        except services.InvalidData as exc:
            raise forms.ValidationError(exc.message) from exc


class CredentialInline(admin.TabularInline):
    model = Credential
    extra = 0
    can_delete = False
    fields = ["kind", "state", "fingerprint", "serial", "not_after", "created_at", "revoked_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceForm
    list_display = ["identity", "connector", "status", "name", "owner", "last_seen_at"]
    list_filter = ["status", "auth_mode", "connector"]
    search_fields = ["identity", "name"]
    list_select_related = ["connector", "owner"]
    raw_id_fields = ["owner", "parent"]
    # Counting a million rows twice per page is the slow part of a big changelist.
    show_full_result_count = False
    readonly_fields = [
        "connector",
        "identity",
        "status",
        "auth_mode",
        "activation_expires_at",
        "provisioned_at",
        "first_seen_at",
        "last_seen_at",
        "last_ip",
        "credential_version",
        "created_at",
    ]
    inlines = [CredentialInline]
    actions = ["reset_devices", "revoke_devices"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Reset: back to whitelisted with a fresh window")
    def reset_devices(self, request, queryset):
        devices = list(queryset.select_related("connector"))
        for device in devices:
            services.reset_device(device, actor=_actor(request))
        messages.success(request, f"Reset {len(devices)} device(s).")

    @admin.action(description="Revoke every credential")
    def revoke_devices(self, request, queryset):
        devices = list(queryset)
        for device in devices:
            services.revoke_device(device, actor=_actor(request))
        messages.success(request, f"Revoked {len(devices)} device(s).")

    def delete_model(self, request, obj):
        services.delete_device(obj, actor=_actor(request))

    def delete_queryset(self, request, queryset):
        for device in queryset:
            services.delete_device(device, actor=_actor(request))


@admin.register(Credential)
class CredentialAdmin(ReadOnlyAdmin):
    list_display = ["device", "kind", "state", "fingerprint", "created_at", "revoked_at"]
    list_filter = ["kind", "state"]
    search_fields = ["device__identity", "fingerprint", "serial"]
    list_select_related = ["device"]
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "connector", "identity", "kind", "reason", "source_ip"]
    list_filter = ["kind", "connector"]
    search_fields = ["identity", "reason"]
    list_select_related = ["connector"]
    show_full_result_count = False


@admin.register(DataPoint)
class DataPointAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "device", "alias", "value"]
    search_fields = ["device__identity", "alias"]
    list_select_related = ["device"]
    show_full_result_count = False


@admin.register(WhitelistImport)
class WhitelistImportAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "connector",
        "status",
        "dry_run",
        "on_error",
        "total",
        "processed",
        "created",
        "error_count",
        "created_at",
    ]
    list_filter = ["status", "dry_run", "on_error"]
    search_fields = ["connector__name", "connector__id"]
    list_select_related = ["connector"]


@admin.register(IngestMark)
class IngestMarkAdmin(ReadOnlyAdmin):
    list_display = ["epoch", "last_sequence", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False
