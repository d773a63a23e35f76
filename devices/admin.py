"""Admin views of devices and their records.

Devices are whitelisted through the portal, the API or a CSV import, and
change status only through `devices.services`, so every transition is logged.
Hashes, certificates and events are shown, never edited; events are never
deleted here either (only retention removes them). Every action and deletion
offered here leaves a line naming the admin, and is offered only to staff whose
permissions allow it (viewing is not enough).
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery

from audit.models import Event
from connectors.models import Connector
from core.net import client_ip
from devices import services
from devices.models import Credential, DataPoint, Device, IngestMark, WhitelistImport


def _actor(request) -> services.Actor:
    return services.Actor.of(request, "admin")


class NoDirectDeleteMixin:
    """Rows that go only with their parent (device, connector, CA), never one by one here.

    Deleting one alone would change what authenticates a device without a line in
    the log. Delete permission itself stays, so deleting the parent in the admin
    (which cascades to these rows) is not refused.
    """

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        raise PermissionDenied


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the system; the admin may look (and delete with their parent)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LoggedDeleteMixin:
    """Rows an admin may delete one by one (data, import records): each deletion
    leaves a `delete` line naming the admin, as every other admin action does."""

    def delete_model(self, request, obj):
        services.delete_records(
            type(obj).objects.filter(pk=obj.pk), actor=_actor(request), ip=client_ip(request)
        )

    def delete_queryset(self, request, queryset):
        services.delete_records(queryset, actor=_actor(request), ip=client_ip(request))


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

    @admin.action(
        description="Reset: back to whitelisted with a fresh window", permissions=["change"]
    )
    def reset_devices(self, request, queryset):
        devices = list(queryset.select_related("connector"))
        for device in devices:
            services.reset_device(device, actor=_actor(request))
        messages.success(request, f"Reset {len(devices)} device(s).")

    @admin.action(description="Revoke every credential", permissions=["change"])
    def revoke_devices(self, request, queryset):
        devices = list(queryset)
        for device in devices:
            services.revoke_device(device, actor=_actor(request))
        messages.success(request, f"Revoked {len(devices)} device(s).")

    def save_model(self, request, obj, form, change):
        stored = Device.objects.get(pk=obj.pk)
        before = {name: getattr(stored, name) for name in form.changed_data}
        super().save_model(request, obj, form, change)
        services.log_device_changed(obj, before, actor=_actor(request), ip=client_ip(request))

    def delete_model(self, request, obj):
        services.delete_device(obj, actor=_actor(request), ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        for device in queryset:
            services.delete_device(device, actor=_actor(request), ip=client_ip(request))


@admin.register(Credential)
class CredentialAdmin(NoDirectDeleteMixin, ReadOnlyAdmin):
    list_display = ["device", "kind", "state", "fingerprint", "created_at", "revoked_at"]
    list_filter = ["kind", "state"]
    search_fields = ["device__identity", "fingerprint", "serial"]
    list_select_related = ["device"]
    show_full_result_count = False


class ConnectorGoneFilter(admin.SimpleListFilter):
    """Events of connectors that were deleted: their only remaining view."""

    title = "connector"
    parameter_name = "connector_state"

    def lookups(self, request, model_admin):
        return [("deleted", "Deleted connectors"), ("none", "No connector (API tokens)")]

    def queryset(self, request, queryset):
        if self.value() == "deleted":
            return queryset.filter(connector_id__isnull=False, connector_name__isnull=True)
        if self.value() == "none":
            return queryset.filter(connector_id__isnull=True)
        return queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    """The audit trail: every line of every connector's log, deleted connectors' included.

    Append-only: no add, change or delete here, for anyone.
    """

    list_display = [
        "created_at",
        "connector_label",
        "identity",
        "kind",
        "actor_name",
        "reason",
        "source_ip",
    ]
    list_filter = ["kind", ConnectorGoneFilter]
    # `=connector__id` compares the stored id, so a deleted connector's id finds its log.
    search_fields = ["=connector__id", "identity", "actor_name", "reason"]
    show_full_result_count = False
    readonly_fields = [
        "created_at",
        "connector_label",
        "identity",
        "kind",
        "reason",
        "actor_name",
        "actor",
        "source_ip",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        # The connector's name by a subquery, not a join: Django would turn a join
        # into an INNER one under a filter on the connector, hiding deleted ones.
        name = Connector.objects.filter(pk=OuterRef("connector_id")).values("name")[:1]
        return super().get_queryset(request).annotate(connector_name=Subquery(name))

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="connector", ordering="connector_id")
    def connector_label(self, event):
        if event.connector_id is None:
            return "—"
        if event.connector_name is None:
            return f"{event.connector_id} (deleted)"
        return f"{event.connector_name} ({event.connector_id})"


@admin.register(DataPoint)
class DataPointAdmin(LoggedDeleteMixin, ReadOnlyAdmin):
    list_display = ["created_at", "device", "alias", "value"]
    search_fields = ["device__identity", "alias"]
    list_select_related = ["device"]
    show_full_result_count = False


@admin.register(WhitelistImport)
class WhitelistImportAdmin(LoggedDeleteMixin, ReadOnlyAdmin):
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
    list_display = ["consumer", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        return False
