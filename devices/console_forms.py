"""Forms of the connector overview and the Devices tab at scale: ranges, sorts, bulk actions."""

from django import forms

from devices import overview
from devices.forms import MAX_CURSOR, DeviceFilterForm, parse_tags

SORTS = [
    ("id", "Oldest first"),
    ("identity", "Identity"),
    ("last_seen", "Last seen"),
    ("status", "Status"),
]
PAGE_SIZES = [25, 50, 100, 200]
DEFAULT_PAGE_SIZE = 50


class OverviewForm(forms.Form):
    """The overview's query string: which time range the charts show."""

    range = forms.ChoiceField(
        required=False, choices=[("", "")] + [(key, r.label) for key, r in overview.RANGES.items()]
    )


class DeviceListForm(DeviceFilterForm):
    """Filters, a sort, a page size and where the page starts.

    `after` / `before` carry the cursor of the row the page follows or precedes
    (the sort's value and the id); `at` is "last" for the final page.
    """

    sort = forms.ChoiceField(required=False, choices=SORTS)
    size = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=DEFAULT_PAGE_SIZE,
        choices=[(size, f"{size} a page") for size in PAGE_SIZES],
    )
    after = forms.CharField(required=False, max_length=400)
    before = forms.CharField(required=False, max_length=400)
    at = forms.ChoiceField(required=False, choices=[("", ""), ("last", "last")])

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "id"


BULK_ACTIONS = [
    ("revoke", "Revoke"),
    ("reset", "Reset"),
    ("delete", "Delete"),
    ("tag", "Add a tag"),
    ("export", "Export as CSV"),
]


class BulkActionForm(forms.Form):
    """A bulk action on picked devices (`ids`) or on every device the filters match."""

    action = forms.ChoiceField(choices=BULK_ACTIONS)
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("all", "all")])
    ids = forms.TypedMultipleChoiceField(required=False, coerce=int)
    tag = forms.CharField(required=False, max_length=330)
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the view keeps only the connector's own.
        self.fields["ids"].valid_value = lambda value: (
            str(value).isdigit() and 0 < int(value) <= MAX_CURSOR
        )

    def clean_tag(self) -> list[dict]:
        text = self.cleaned_data["tag"].strip()
        return parse_tags(text) if text else []

    def clean(self):
        data = super().clean()
        if data.get("action") == "tag" and not data.get("tag"):
            self.add_error("tag", "Write the tag to add as name=value.")
        if data.get("scope") == "selected" and not data.get("ids"):
            self.add_error("ids", "Pick at least one device, or choose every matching device.")
        return data
