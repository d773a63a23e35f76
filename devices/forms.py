"""Portal forms for devices: whitelist one, filter the list, upload a CSV, filter the log."""

import json
import re

from django import forms

from audit.models import Event
from connectors.forms import WindowFormMixin, split_window, window_fields
from connectors.models import Connector
from devices import services
from devices.models import Device, WhitelistImport

MAX_TAG_TEXT = 20_000
MAX_CURSOR = 2**63 - 1
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def parse_tags(text: str) -> list[dict]:
    """Tags typed as `name=value` lines, or as the CSV's JSON list of {"name","value"}."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            tags = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}.") from exc
    else:
        tags = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number}: write each tag as name=value.")
            tags.append({"name": name.strip(), "value": value.strip()})
    try:
        return services.validate_tags(tags)
    except services.InvalidData as exc:
        raise forms.ValidationError(f"{exc.message[:1].upper()}{exc.message[1:]}.") from exc


def tags_as_text(tags: list[dict]) -> str:
    return "\n".join(f"{tag['name']}={tag['value']}" for tag in tags)


class WhitelistForm(WindowFormMixin, forms.Form):
    """Add one device: its identity, tags and, if it differs, its own activation window."""

    identity = forms.CharField(
        max_length=300,
        strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    name = forms.CharField(max_length=100, required=False, label="Name (optional)")
    tags = forms.CharField(
        required=False,
        max_length=MAX_TAG_TEXT,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "group=g1\nclaim_code=abc"}),
        help_text='One <code>name=value</code> per line, or a JSON list of {"name", "value"}.',
    )
    window_amount, window_unit = window_fields(required=True)
    certificate = forms.CharField(
        label="TLS client certificate (optional)",
        required=False,
        strip=False,
        max_length=20_000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----", "spellcheck": "false"}
        ),
        help_text=(
            "PEM. When given, only this certificate can provision the device; "
            "its CN must be the identity."
        ),
    )

    def __init__(self, *args, connector: Connector, **kwargs):
        super().__init__(*args, **kwargs)
        self.connector = connector
        fmt = connector.identity_format
        self.fields["identity"].help_text = f"Expected: {fmt.describe()}."
        amount, unit = split_window(connector.activation_window_seconds)
        self.fields["window_amount"].initial = amount
        self.fields["window_unit"].initial = unit

    def clean_identity(self):
        try:
            return services.validate_identity(self.connector, self.cleaned_data["identity"])
        except services.IdentityRejected as exc:
            raise forms.ValidationError(f"{exc.message[:1].upper()}{exc.message[1:]}.") from exc

    def clean_tags(self):
        return parse_tags(self.cleaned_data["tags"])

    def clean(self):
        cleaned = super().clean()
        cleaned["window_seconds"] = self.clean_window()
        return cleaned


class DeviceEditForm(forms.Form):
    """What a maker may change on a device from its page: its name and its tags."""

    name = forms.CharField(max_length=100, required=False, label="Name (optional)")
    tags = forms.CharField(
        required=False,
        max_length=MAX_TAG_TEXT,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "group=g1\nclaim_code=abc"}),
        help_text='One <code>name=value</code> per line, or a JSON list of {"name", "value"}.',
    )

    def clean_name(self):
        name = self.cleaned_data["name"]
        if _CONTROL.search(name):
            raise forms.ValidationError("A name holds no control characters (line breaks, tabs).")
        return name

    def clean_tags(self):
        return parse_tags(self.cleaned_data["tags"])


def _cursor():
    return forms.IntegerField(required=False, min_value=0, max_value=MAX_CURSOR)


class DeviceFilterForm(forms.Form):
    """The Devices tab's query string: filters and a keyset cursor."""

    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Device.STATUSES])
    tag = forms.CharField(
        required=False,
        max_length=330,
        widget=forms.TextInput(attrs={"placeholder": "name=value", "spellcheck": "false"}),
    )
    q = forms.CharField(
        required=False,
        max_length=300,
        label="Identity",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Search by identity", "spellcheck": "false"}
        ),
    )
    after = _cursor()
    before = _cursor()

    def clean_tag(self) -> tuple[str, str | None] | None:
        text = self.cleaned_data["tag"].strip()
        if not text:
            return None
        name, sep, value = text.partition("=")
        name = name.strip()
        if not name:
            raise forms.ValidationError("Write a tag as name=value, or just name.")
        return name, (value.strip() if sep else None)


class ImportForm(forms.Form):
    """Add many devices from a CSV in the export's format (ID, TLS Client Certificate, Tags)."""

    file = forms.FileField(
        label="CSV file",
        help_text=(
            "Header <code>ID,TLS Client Certificate,Tags</code>; Tags is a JSON list of "
            '{"name", "value"}. UTF-8, with or without BOM.'
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    dry_run = forms.BooleanField(
        required=False,
        label="Dry run: check every row, whitelist nothing",
    )
    on_error = forms.ChoiceField(
        label="When a row is bad",
        choices=[
            (WhitelistImport.ABORT, "Abort: whitelist nothing unless every row is good"),
            (WhitelistImport.SKIP, "Skip bad rows and whitelist the good ones"),
        ],
        initial=WhitelistImport.ABORT,
        widget=forms.RadioSelect(),
    )


class EventFilterForm(forms.Form):
    """The Logs tab's filters, and the live feed's cursor."""

    kind = forms.ChoiceField(required=False, choices=[("", "All kinds"), *Event.KINDS])
    identity = forms.CharField(
        required=False,
        max_length=160,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Exact identity", "spellcheck": "false"}
        ),
    )
    after = _cursor()
    before = _cursor()
