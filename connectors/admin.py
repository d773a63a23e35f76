"""Admin views of connectors and resources.

Every save and delete here leaves a line in the connector's log naming the
admin, as the portal and the API do (connectors.services).
"""

from django import forms
from django.contrib import admin

from audit.events import Actor
from connectors import services
from connectors.identity import InvalidIdentity
from connectors.models import Connector, Resource
from core.net import client_ip


def _audit(request) -> dict:
    return {"actor": Actor.of(request, "admin"), "ip": client_ip(request)}


class ConnectorForm(forms.ModelForm):
    class Meta:
        model = Connector
        # Every setting the log reports a change of, and only those.
        fields = list(services.SETTINGS)

    def clean(self):
        cleaned = super().clean()
        fmt = Connector(
            identity_type=cleaned.get("identity_type", ""),
            identity_prefix=cleaned.get("identity_prefix", ""),
            identity_mac_style=cleaned.get("identity_mac_style", ""),
            identity_length=cleaned.get("identity_length"),
        ).identity_format
        try:
            fmt.validate_definition()
        except InvalidIdentity as exc:
            raise forms.ValidationError(f"Identity format: {exc}.") from exc
        return cleaned


class ResourceInline(admin.TabularInline):
    model = Resource
    extra = 0
    fields = ["alias", "format", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Connector)
class ConnectorAdmin(admin.ModelAdmin):
    form = ConnectorForm
    list_display = ["name", "id", "owner", "identity_type", "auth_mode", "self_registration"]
    list_filter = ["auth_mode", "identity_type", "self_registration"]
    search_fields = ["name", "id", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    filter_horizontal = ["managers"]
    readonly_fields = ["id", "device_host", "created_at"]
    inlines = [ResourceInline]
    # Deleting goes through connectors.services, one connector at a time, so each
    # leaves its `delete` line in the log.
    fieldsets = [
        (None, {"fields": ["id", "name", "owner", "managers", "device_host", "created_at"]}),
        (
            "Identity format",
            {
                "fields": [
                    "identity_prefix",
                    "identity_type",
                    "identity_mac_style",
                    "identity_length",
                ]
            },
        ),
        (
            "Provisioning",
            {
                "fields": [
                    "auth_mode",
                    "self_registration",
                    "ip_allowlist",
                    "activation_window_seconds",
                ]
            },
        ),
    ]

    def save_model(self, request, obj, form, change):
        # Settings as they were, compared in save_related once managers are saved too.
        form.settings_before = (
            services.settings_of(Connector.objects.get(pk=obj.pk)) if change else None
        )
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        connector, before = form.instance, form.settings_before
        if before is None:
            # Logged first, so the aliases defined with it follow in the log.
            services.log_connector_created(connector, **_audit(request))
        super().save_related(request, form, formsets, change)
        if before is not None:
            services.log_connector_changed(connector, before, **_audit(request))

    def save_formset(self, request, form, formset, change):
        # The resources inline: the same lines as defining or removing an alias elsewhere.
        before = {
            resource.pk: (resource.alias, resource.format)
            for resource in Resource.objects.filter(connector=form.instance)
        }
        super().save_formset(request, form, formset, change)
        for resource in formset.new_objects:
            services.log_resource_defined(resource, **_audit(request))
        for resource, _ in formset.changed_objects:
            services.log_resource_changed(resource, before[resource.pk], **_audit(request))
        for resource in formset.deleted_objects:
            services.log_resource_removed(resource, **_audit(request))

    def delete_model(self, request, obj):
        services.delete_connector(obj, **_audit(request))

    def delete_queryset(self, request, queryset):
        for connector in queryset:
            services.delete_connector(connector, **_audit(request))


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ["alias", "format", "connector", "created_at"]
    list_filter = ["format"]
    search_fields = ["alias", "connector__name", "connector__id"]
    list_select_related = ["connector"]
    raw_id_fields = ["connector"]

    def save_model(self, request, obj, form, change):
        before = Resource.objects.get(pk=obj.pk) if change else None
        super().save_model(request, obj, form, change)
        if before is None:
            services.log_resource_defined(obj, **_audit(request))
        elif before.connector_id != obj.connector_id:
            # Moved to another connector: removed from one log, defined in the other.
            services.log_resource_removed(before, **_audit(request))
            services.log_resource_defined(obj, **_audit(request))
        else:
            services.log_resource_changed(obj, (before.alias, before.format), **_audit(request))

    def delete_model(self, request, obj):
        services.delete_resource(obj, **_audit(request))

    def delete_queryset(self, request, queryset):
        for resource in queryset:
            services.delete_resource(resource, **_audit(request))
