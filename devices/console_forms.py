"""Forms of the connector overview and the Devices tab at scale: ranges, sorts, bulk actions."""

from django import forms

from devices import listing, overview
from devices.forms import MAX_CURSOR, DeviceFilterForm, parse_tags
from devices.models import BulkAction

PAGE_SIZES = [25, 50, 100, 500]
DEFAULT_PAGE_SIZE = 50
# The most devices one bulk action may pick by hand: a page at its largest.
MAX_PICKED = max(PAGE_SIZES)


class OverviewForm(forms.Form):
    """The overview's query string: which time range the charts show."""

    range = forms.ChoiceField(
        required=False, choices=[("", "")] + [(key, r.label) for key, r in overview.RANGES.items()]
    )


class DeviceListForm(DeviceFilterForm):
    """Filters, a sort and its direction, a page size and where the page starts.

    `after` / `before` carry the cursor of the row the page follows or precedes
    (devices.listing.Position); `at` is "last" for the final page.
    """

    sort = forms.ChoiceField(
        required=False, choices=[(key, sort.label) for key, sort in listing.SORTS.items()]
    )
    dir = forms.ChoiceField(required=False, choices=[("asc", "asc"), ("desc", "desc")])
    size = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=DEFAULT_PAGE_SIZE,
        choices=[(size, f"{size} a page") for size in PAGE_SIZES],
    )
    after = forms.CharField(required=False, max_length=450)
    before = forms.CharField(required=False, max_length=450)
    at = forms.ChoiceField(required=False, choices=[("", ""), ("last", "last")])

    def clean_sort(self) -> listing.Sort:
        return listing.SORTS[self.cleaned_data["sort"] or listing.DEFAULT_SORT]

    def clean(self):
        data = super().clean()
        sort = data.get("sort")
        if sort is not None and not data.get("dir"):
            data["dir"] = sort.first_direction
        given = [key for key in ("after", "before", "at") if data.get(key)]
        if len(given) > 1:
            raise forms.ValidationError("A page starts in one place: use one of after, before, at.")
        for key in ("after", "before"):
            if data.get(key) and sort is not None:
                try:
                    data[key] = listing.decode(data[key], sort)
                except listing.BadCursor as exc:
                    self.add_error(key, f"{str(exc)[:1].upper()}{str(exc)[1:]}.")
            else:
                data[key] = None
        return data


class BulkActionForm(DeviceFilterForm):
    """A bulk action on picked devices (`ids`) or on every device the filters match.

    The filters (status, tag, q) are the Devices tab's, carried along so "every
    matching device" means what the maker saw.
    """

    action = forms.ChoiceField(choices=BulkAction.ACTIONS + [("export", "Export as CSV")])
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("all", "all")])
    ids = forms.TypedMultipleChoiceField(required=False, coerce=int)
    change_tag = forms.CharField(
        required=False,
        max_length=330,
        label="Tag",
        widget=forms.TextInput(attrs={"placeholder": "name=value", "spellcheck": "false"}),
    )
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any id is acceptable here; the view keeps only the connector's own.
        self.fields["ids"].valid_value = lambda value: (
            str(value).isascii() and str(value).isdigit() and 0 < int(value) <= MAX_CURSOR
        )

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"]
        if len(ids) > MAX_PICKED:
            raise forms.ValidationError(
                f"Pick at most {MAX_PICKED} devices, or choose every matching device."
            )
        return sorted(set(ids))

    def clean(self):
        data = super().clean()
        action, text = data.get("action"), data.get("change_tag", "").strip()
        data["change_tag"] = None
        if action == "tag":
            try:
                tags = parse_tags(text) if text else []
            except forms.ValidationError as exc:
                self.add_error("change_tag", exc)
                tags = None
            if tags is not None and len(tags) != 1:
                self.add_error("change_tag", "Write the one tag to add as name=value.")
            elif tags:
                data["change_tag"] = tags[0]
        elif action == "untag":
            name, sep, value = text.partition("=")
            if not name.strip():
                self.add_error("change_tag", "Write the tag to remove as name=value, or just name.")
            else:
                data["change_tag"] = (name.strip(), value.strip() if sep else None)
        if data.get("scope") == "selected" and not data.get("ids") and "ids" not in self.errors:
            self.add_error("ids", "Pick at least one device, or choose every matching device.")
        return data
