from django import forms
from django.contrib import admin

from connectors.identity import InvalidIdentity
from connectors.models import Connector, Resource


class ConnectorForm(forms.ModelForm):
    class Meta:
        model = Connector
        fields = [
            "name",
            "owner",
            "managers",
            "identity_prefix",
            "identity_type",
            "identity_mac_style",
            "identity_length",
            "auth_mode",
            "self_registration",
            "ip_allowlist",
            "activation_window_seconds",
        ]

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


@admin.register(Resource)
class ResourceAdmin(admin.ModelAdmin):
    list_display = ["alias", "format", "connector", "created_at"]
    list_filter = ["format"]
    search_fields = ["alias", "connector__name", "connector__id"]
    list_select_related = ["connector"]
    raw_id_fields = ["connector"]
