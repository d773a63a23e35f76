"""Portal forms for connectors: settings (identity format, auth, provisioning) and resources."""

import ipaddress
import re

from django import forms

from connectors import identity
from connectors.models import (
    CONTENT_DESCRIPTION_MAX,
    CONTENT_NAME_MAX,
    CONTENT_TYPE_MAX,
    Connector,
    Resource,
)

MAX_ALLOWLIST_ENTRIES = 1000
MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 366 * 24 * 3600
WINDOW_UNITS = [("minutes", "minutes"), ("hours", "hours"), ("days", "days")]
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}


def split_window(seconds: int) -> tuple[int, str]:
    """The largest unit that expresses `seconds` exactly, for showing a window."""
    # Hours read best for windows up to a week ("48 hours"), days beyond.
    if seconds % UNIT_SECONDS["days"] == 0 and seconds >= 7 * UNIT_SECONDS["days"]:
        return seconds // UNIT_SECONDS["days"], "days"
    if seconds % UNIT_SECONDS["hours"] == 0:
        return seconds // UNIT_SECONDS["hours"], "hours"
    return max(1, seconds // 60), "minutes"


def describe_window(seconds: int) -> str:
    amount, unit = split_window(seconds)
    return f"{amount} {unit[:-1] if amount == 1 else unit}"


def parse_allowlist(text: str) -> list[str]:
    """CIDRs typed one per line (or separated by commas), normalised and deduplicated."""
    entries = [entry for entry in re.split(r"[\s,]+", text) if entry]
    if not entries:
        raise forms.ValidationError("List at least one address, or turn the restriction off.")
    if len(entries) > MAX_ALLOWLIST_ENTRIES:
        raise forms.ValidationError(f"At most {MAX_ALLOWLIST_ENTRIES} entries.")
    networks, bad = [], []
    for entry in entries:
        try:
            network = str(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            bad.append(entry)
            continue
        if network not in networks:
            networks.append(network)
    if bad:
        shown = ", ".join(bad[:5]) + (" …" if len(bad) > 5 else "")
        raise forms.ValidationError(f"Not an IPv4 or IPv6 address or CIDR: {shown}")
    return networks


class WindowFormMixin:
    """An activation window typed as an amount and a unit, cleaned into seconds."""

    window_required = True

    def clean_window(self) -> int | None:
        amount = self.cleaned_data.get("window_amount")
        unit = self.cleaned_data.get("window_unit")
        if amount is None:
            if self.window_required and "window_amount" not in self.errors:
                self.add_error("window_amount", "Enter how long the activation window lasts.")
            return None
        if unit is None:
            return None
        seconds = amount * UNIT_SECONDS[unit]
        if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
            self.add_error(
                "window_amount", "The activation window must be between 1 minute and 366 days."
            )
            return None
        return seconds


def window_fields(required: bool):
    amount = forms.IntegerField(
        label="Activation window",
        required=required,
        min_value=1,
        max_value=MAX_WINDOW_SECONDS // 60,
        widget=forms.NumberInput(attrs={"class": "window-amount", "inputmode": "numeric"}),
    )
    unit = forms.ChoiceField(
        label="Unit", choices=WINDOW_UNITS, initial="hours", widget=forms.Select()
    )
    return amount, unit


class ConnectorForm(WindowFormMixin, forms.ModelForm):
    """Every setting of a connector an admin edits in the browser."""

    window_amount, window_unit = window_fields(required=True)
    identity_length = forms.IntegerField(
        label="Length",
        required=False,
        min_value=1,
        max_value=identity.MAX_IDENTITY_LENGTH,
        help_text="Optional. Not counting the prefix; blank means any length.",
    )
    restrict_ips = forms.BooleanField(
        label="Restrict IP addresses that may provision devices",
        required=False,
    )
    ip_allowlist_text = forms.CharField(
        max_length=100_000,
        label="Allowed addresses",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "203.0.113.0/24\n2001:db8::/32"}),
        help_text="One IPv4 or IPv6 address or CIDR per line (commas work too).",
    )

    class Meta:
        model = Connector
        fields = [
            "name",
            "identity_prefix",
            "identity_type",
            "identity_mac_style",
            "identity_length",
            "auth_mode",
            "self_registration",
        ]
        labels = {
            "identity_prefix": "Prefix",
            "identity_type": "Type",
            "identity_mac_style": "MAC address style",
            "auth_mode": "Authentication",
            "self_registration": "Allow devices to register their own identity",
        }
        help_texts = {
            "identity_prefix": "Optional. Every identity must start with it.",
            "self_registration": (
                "When on, an identity that was never whitelisted is provisioned on its "
                "first activation."
            ),
        }
        widgets = {
            "name": forms.TextInput(attrs={"autocomplete": "off"}),
            "identity_prefix": forms.TextInput(
                attrs={"autocomplete": "off", "spellcheck": "false"}
            ),
            "auth_mode": forms.RadioSelect(),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            amount, unit = split_window(self.instance.activation_window_seconds)
            self.initial["window_amount"] = amount
            self.initial["window_unit"] = unit
            self.initial["restrict_ips"] = bool(self.instance.ip_allowlist)
            self.initial["ip_allowlist_text"] = "\n".join(self.instance.ip_allowlist)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the connector a name.")
        return name

    def clean_identity_prefix(self):
        prefix = self.cleaned_data["identity_prefix"]
        try:
            identity.IdentityFormat(prefix=prefix).validate_definition()
        except identity.InvalidIdentity as exc:
            raise forms.ValidationError(f"{str(exc).capitalize()}.") from exc
        return prefix

    def clean(self):
        cleaned = super().clean()
        window = self.clean_window()
        if window is not None:
            cleaned["activation_window_seconds"] = window
        kind = cleaned.get("identity_type")
        if kind in (identity.MAC, identity.UUID4):
            # MAC addresses and UUIDs have a fixed length of their own.
            cleaned["identity_length"] = None
        cleaned["ip_allowlist"] = []
        if cleaned.get("restrict_ips"):
            try:
                cleaned["ip_allowlist"] = parse_allowlist(cleaned.get("ip_allowlist_text", ""))
            except forms.ValidationError as exc:
                self.add_error("ip_allowlist_text", exc)
        if not self.errors:
            try:
                self.format_of(cleaned).validate_definition()
            except identity.InvalidIdentity as exc:
                raise forms.ValidationError(f"{str(exc).capitalize()}.") from exc
        return cleaned

    @staticmethod
    def format_of(cleaned) -> identity.IdentityFormat:
        return identity.IdentityFormat(
            type=cleaned.get("identity_type") or identity.OPAQUE,
            prefix=cleaned.get("identity_prefix") or "",
            mac_style=cleaned.get("identity_mac_style") or identity.MAC_COLON,
            length=cleaned.get("identity_length"),
        )

    def save(self, commit=True):
        connector = super().save(commit=False)
        connector.identity_length = self.cleaned_data.get("identity_length")
        connector.activation_window_seconds = self.cleaned_data["activation_window_seconds"]
        connector.ip_allowlist = self.cleaned_data["ip_allowlist"]
        if commit:
            connector.save()
            self.save_m2m()
        return connector


class IdentityCheckForm(forms.Form):
    """The live tester's query: an identity and, optionally, an unsaved format to try."""

    id = forms.CharField(required=False, strip=False, max_length=1000)
    prefix = forms.CharField(required=False, strip=False, max_length=32)
    type = forms.ChoiceField(required=False, choices=identity.IDENTITY_TYPES)
    mac_style = forms.ChoiceField(required=False, choices=identity.MAC_STYLES)
    length = forms.IntegerField(required=False, min_value=1, max_value=identity.MAX_IDENTITY_LENGTH)


class FirstAliasForm(forms.Form):
    """The alias a new connector starts with, so its example write keeps what it sends."""

    alias = forms.CharField(
        required=False,
        max_length=64,
        initial="temperature",
        label="First alias",
        help_text="What devices write to, e.g. temperature. Leave empty to define aliases later.",
        validators=Resource._meta.get_field("alias").validators,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    format = forms.ChoiceField(
        choices=Resource.FORMATS, initial=Resource.NUMBER, required=False, label="Its values are"
    )

    def save(self, connector: Connector) -> Resource | None:
        alias = self.cleaned_data["alias"].strip()
        if not alias:
            return None
        return Resource.objects.create(
            connector=connector, alias=alias, format=self.cleaned_data["format"] or Resource.NUMBER
        )


class ResourceForm(forms.ModelForm):
    """Define one alias devices may write to."""

    class Meta:
        model = Resource
        fields = ["alias", "format"]
        widgets = {"alias": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})}
        help_texts = {"alias": "Letters, digits, '_', '.' and '-'."}

    def __init__(self, *args, connector: Connector, **kwargs):
        super().__init__(*args, **kwargs)
        self.connector = connector

    def clean_alias(self):
        alias = self.cleaned_data["alias"]
        if Resource.objects.filter(connector=self.connector, alias=alias).exists():
            raise forms.ValidationError("This connector already defines that alias.")
        return alias

    def save(self, commit=True):
        resource = super().save(commit=False)
        resource.connector = self.connector
        if commit:
            resource.save()
        return resource


class ContentUploadForm(forms.Form):
    """A file for the content area; connectors.content checks the name and type."""

    file = forms.FileField(label="File")
    name = forms.CharField(
        label="Name (id)",
        required=False,
        max_length=CONTENT_NAME_MAX,
        help_text="What devices ask for (<code>?id=</code>); the file's own name when empty. "
        "A file of the same name is replaced.",
    )
    content_type = forms.CharField(
        label="Content type",
        required=False,
        max_length=CONTENT_TYPE_MAX,
        help_text="Sent with each download; guessed from the file when empty.",
    )
    description = forms.CharField(
        label="Description", required=False, max_length=CONTENT_DESCRIPTION_MAX
    )
